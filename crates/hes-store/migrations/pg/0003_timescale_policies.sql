-- With TimescaleDB (when the extension is installed), readings chunks older than 7 days are
-- compressed, segmented by channel. Times are Unix seconds (bigint), so the hypertable needs
-- an "integer now" function for the policy. Without TimescaleDB this does nothing: retention of
-- native monthly partitions is applied by the store (Store::apply_retention).
-- Not exercised here (TimescaleDB is not installable on the development machines); see
-- docs/store.md.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE OR REPLACE FUNCTION hes_unix_now() RETURNS bigint
            LANGUAGE sql STABLE AS $f$ SELECT extract(epoch FROM now())::bigint $f$;
        PERFORM set_integer_now_func('readings', 'hes_unix_now');
        ALTER TABLE readings SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'meter, obis, attribute',
            timescaledb.compress_orderby = 'time'
        );
        PERFORM add_compression_policy('readings', compress_after => 604800::bigint);
    END IF;
END
$$;
