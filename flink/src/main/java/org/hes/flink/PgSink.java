package org.hes.flink;

import java.io.IOException;
import java.io.StringReader;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Readings and aggregates into PostgreSQL, the same tables and keys as the Rust store
 * (crates/hes-store/src/pg): readings COPYed into a staging table, then INSERT … ON CONFLICT DO
 * NOTHING on (meter, obis, attribute, time); aggregates upserted on (subject, channel, period,
 * period_start). Readings first, then aggregates, in one transaction per flush. Flushed before
 * every checkpoint (and when the buffer is full), so a restored checkpoint never lacks a row its
 * state assumes stored; replays write the same values again (idempotent).
 */
final class PgSink implements Sink<PgRow> {
    private static final long serialVersionUID = 1L;
    private final String url;
    private final int maxBuffer;

    PgSink(String url, int maxBuffer) {
        this.url = url;
        this.maxBuffer = maxBuffer;
    }

    @Override
    public SinkWriter<PgRow> createWriter(WriterInitContext context) {
        return new Writer(url, maxBuffer);
    }

    static final class Writer implements SinkWriter<PgRow> {
        private static final Logger LOG = LoggerFactory.getLogger(PgSink.class);
        private final String url;
        private final int maxBuffer;
        private final List<PgRow> readings = new ArrayList<>();
        private final Map<String, PgRow> aggregates = new LinkedHashMap<>();
        private final Set<Long> months = new HashSet<>();
        private Connection conn;
        private Boolean partitioned;

        Writer(String url, int maxBuffer) {
            this.url = url;
            this.maxBuffer = maxBuffer;
        }

        @Override
        public void write(PgRow r, Context context) throws IOException {
            if (r.kind == 0) {
                readings.add(r);
            } else {
                // The last of the same key in a flush wins (ON CONFLICT cannot touch a row twice).
                aggregates.put(r.subject + '\u0000' + r.channel + '\u0000' + r.period + '\u0000' + r.periodStart, r);
            }
            if (readings.size() + aggregates.size() >= maxBuffer) {
                flush(false);
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            if (readings.isEmpty() && aggregates.isEmpty()) {
                return;
            }
            long backoff = 200;
            for (int attempt = 1; ; attempt++) {
                try {
                    store();
                    readings.clear();
                    aggregates.clear();
                    return;
                } catch (SQLException e) {
                    close0();
                    // PostgreSQL restarting: wait it out a while; past that the job fails and
                    // restarts from its last checkpoint (nothing lost: this buffer is replayed).
                    if (attempt >= 8) {
                        throw new IOException("PostgreSQL: " + e.getMessage(), e);
                    }
                    LOG.warn("PostgreSQL write failed (attempt {}): {}", attempt, e.toString());
                    try {
                        Thread.sleep(backoff);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        throw new IOException(ie);
                    }
                    backoff = Math.min(backoff * 2, 5000);
                }
            }
        }

        private void store() throws SQLException, IOException {
            if (conn == null) {
                conn = new org.postgresql.Driver().connect(url, new java.util.Properties());
                conn.setAutoCommit(false);
                try (Statement st = conn.createStatement()) {
                    st.execute("CREATE TEMP TABLE IF NOT EXISTS readings_stage (LIKE readings) ON COMMIT DELETE ROWS");
                    st.execute("CREATE TEMP TABLE IF NOT EXISTS aggregates_stage (LIKE aggregates) ON COMMIT DELETE ROWS");
                    try (ResultSet rs = st.executeQuery(
                            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'readings'::regclass")) {
                        rs.next();
                        partitioned = rs.getLong(1) > 0;
                    }
                }
                conn.commit();
                months.clear();
            }
            CopyManager copy = ((PGConnection) conn).getCopyAPI();
            try (Statement st = conn.createStatement()) {
                if (!readings.isEmpty()) {
                    ensurePartitions(st);
                    StringBuilder sb = new StringBuilder(readings.size() * 80);
                    for (PgRow r : readings) {
                        text(sb, r.meter).append('\t');
                        text(sb, r.obis).append('\t').append(r.attribute).append('\t').append(r.time)
                                .append('\t').append(r.classId).append('\t').append(r.value).append('\t')
                                .append(r.scaler).append('\t').append(r.unit).append('\t').append(r.status)
                                .append('\t');
                        text(sb, r.source).append('\t').append(r.receivedAt).append('\t').append(r.quality)
                                .append('\n');
                    }
                    copy.copyIn("COPY readings_stage (meter, obis, attribute, time, class_id, value, scaler, "
                            + "unit, status, source, received_at, quality) FROM STDIN", new StringReader(sb.toString()));
                    st.execute("INSERT INTO readings (meter, obis, attribute, time, class_id, value, scaler, unit, "
                            + "status, source, received_at, quality) SELECT meter, obis, attribute, time, class_id, "
                            + "value, scaler, unit, status, source, received_at, quality FROM readings_stage "
                            + "ON CONFLICT DO NOTHING");
                }
                if (!aggregates.isEmpty()) {
                    long now = System.currentTimeMillis() / 1000L;
                    StringBuilder sb = new StringBuilder(aggregates.size() * 80);
                    for (PgRow r : aggregates.values()) {
                        text(sb, r.subject).append('\t');
                        text(sb, r.channel).append('\t').append(r.period).append('\t').append(r.periodStart)
                                .append('\t').append(r.periodEnd).append('\t').append(Double.toString(r.total))
                                .append('\t').append(r.count).append('\t').append(r.complete ? 't' : 'f')
                                .append('\t').append(r.quality).append('\t').append(now).append('\n');
                    }
                    copy.copyIn("COPY aggregates_stage (subject, channel, period, period_start, period_end, total, "
                            + "count, complete, quality, updated_at) FROM STDIN", new StringReader(sb.toString()));
                    st.execute("INSERT INTO aggregates SELECT * FROM aggregates_stage "
                            + "ON CONFLICT (subject, channel, period, period_start) DO UPDATE SET "
                            + "period_end = excluded.period_end, total = excluded.total, count = excluded.count, "
                            + "complete = excluded.complete, quality = excluded.quality, "
                            + "updated_at = excluded.updated_at");
                }
            }
            conn.commit();
        }

        /** The monthly partitions of `readings` the buffer needs (as the Rust store names them). */
        private void ensurePartitions(Statement st) throws SQLException {
            if (!Boolean.TRUE.equals(partitioned)) {
                return;
            }
            for (PgRow r : readings) {
                long m = Periods.start(Periods.MONTH, r.time);
                if (months.contains(m)) {
                    continue;
                }
                LocalDate d = LocalDate.ofEpochDay(Math.floorDiv(m, 86_400L));
                String name = String.format("readings_p%04d%02d", d.getYear(), d.getMonthValue());
                st.execute("SAVEPOINT part");
                try {
                    st.execute("CREATE TABLE IF NOT EXISTS \"" + name + "\" PARTITION OF readings FOR VALUES FROM ("
                            + m + ") TO (" + Periods.end(Periods.MONTH, m) + ")");
                    st.execute("RELEASE SAVEPOINT part");
                } catch (SQLException e) {
                    // Another writer created it at the same moment.
                    st.execute("ROLLBACK TO SAVEPOINT part");
                }
                months.add(m);
            }
        }

        private static StringBuilder text(StringBuilder sb, String s) {
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '\\':
                        sb.append("\\\\");
                        break;
                    case '\t':
                        sb.append("\\t");
                        break;
                    case '\n':
                        sb.append("\\n");
                        break;
                    case '\r':
                        sb.append("\\r");
                        break;
                    default:
                        sb.append(c);
                }
            }
            return sb;
        }

        private void close0() {
            if (conn != null) {
                try {
                    conn.close();
                } catch (SQLException ignored) {
                    // Closing a broken connection.
                }
                conn = null;
            }
        }

        @Override
        public void close() {
            close0();
        }
    }
}
