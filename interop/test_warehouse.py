"""DuckDB, pyarrow and DataFusion, independent Parquet readers, read what `hes export` writes.

Needs HES_BIN (the `hes` binary). The test makes an SQLite store with `hes migrate`, fills it
through Python's own sqlite3 (the schema of docs/store.md), exports it with
`hes export --data-dir`, and checks the Hive-partitioned dataset row by row and in aggregate:
counts per date, sums of value_si, the flags column, timestamps as UTC instants (with the
readers' session time zone set elsewhere), and that a rerun changes nothing.
"""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_fleet import hes_bin  # noqa: E402

import duckdb  # noqa: E402
import pyarrow.dataset as pads  # noqa: E402
import pyarrow as pa  # noqa: E402
from datafusion import SessionContext  # noqa: E402

DAY = 86_400
T0 = 1_795_737_600  # 2026-11-27T00:00:00Z
ENERGY = "1.0.1.8.0.255"
VOLTAGE = "1.0.32.7.0.255"
# hes_model::Quality, in bit order.
FLAGS = ["missing_before", "spike", "negative_consumption", "rollover", "duplicate", "conflict",
         "future", "too_old", "clock_suspect", "out_of_range", "estimated"]


def names(q):
    return ",".join(n for i, n in enumerate(FLAGS) if q & (1 << i))


def sample():
    """Readings over three UTC days (the first starting just before midnight), every flag."""
    readings = []
    for m in range(3):
        meter = f"wh-{m}"
        for slot in range(2 * 96 + 1):
            t = T0 - 900 + slot * 900
            q = (1 << (slot % 11)) if slot % 7 == 0 else 0
            readings.append((meter, ENERGY, 2, t, 3, 1_000_000 + slot * 250 + m, -3, 30, 0,
                             "scheduled", t + 30, q))
            if slot % 4 == 0:
                readings.append((meter, VOLTAGE, 2, t, 3, 2301 + m, -1, 35, 8, "push", t + 1, 0))
    aggregates = []
    for m in range(3):
        for h in range(30):
            s = T0 + h * 3600
            q = 1 << 10 if h == 5 else 0
            aggregates.append((f"wh-{m}", "energy.active.import", "hour", s, s + 3600,
                               1000.0 + h + m / 4, 4, int(q == 0), q))
        aggregates.append((f"wh-{m}", "energy.active.import", "day", T0, T0 + DAY, 24_000.5, 96, 1, 0))
    aggregates.append(("cell=c-1", "energy.active.import", "month", 1_793_491_200, 1_796_083_200,
                       1e6, 2880, 0, 2))  # 2026-11-01 .. 2026-12-01
    return readings, aggregates


def day(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).date()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import sqlite3
    base = tmp_path_factory.mktemp("warehouse")
    data, out = base / "data", base / "wh"
    data.mkdir()
    db = data / "hes.db"
    subprocess.run([hes_bin(), "migrate", "--database-url", str(db)], check=True, timeout=60,
                   capture_output=True)
    readings, aggregates = sample()
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO readings (meter, obis, attribute, time, class_id, value, scaler, unit, "
        "status, source, received_at, quality) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", readings)
    con.executemany(
        "INSERT INTO aggregates (subject, channel, period, period_start, period_end, total, "
        "count, complete, quality, updated_at) VALUES (?,?,?,?,?,?,?,?,?,0)", aggregates)
    con.commit()
    con.close()
    return base, data, out, readings, aggregates


def export(data, out, *extra):
    env = {k: v for k, v in os.environ.items() if k != "HES_DATABASE_URL"}
    p = subprocess.run([hes_bin(), "export", "--data-dir", str(data), "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def files(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_duckdb_reads_the_hive_partitions(exported):
    base, data, out, readings, aggregates = exported
    summary = export(data, out)
    assert summary["rows"] == len(readings) + len(aggregates)
    assert all(f.endswith(".parquet") for f in files(out)), files(out)

    con = duckdb.connect()
    # Timestamps must be instants: the session's zone must not move them or their dates.
    con.execute("SET TimeZone = 'America/New_York'")
    src = f"read_parquet('{out}/readings/**/*.parquet', hive_partitioning = true)"
    per_date = con.execute(
        f"SELECT date, count(*), sum(value_si) FROM {src} GROUP BY date ORDER BY date").fetchall()
    want = {}
    for r in readings:
        c, s = want.get(day(r[3]), (0, 0.0))
        want[day(r[3])] = (c + 1, s + r[5] / 10 ** -r[6])
    assert [d for d, _, _ in per_date] == sorted(want)
    for d, count, total in per_date:
        assert count == want[d][0], d
        assert total == pytest.approx(want[d][1], rel=1e-12), d

    rows = con.execute(
        f"SELECT meter, obis, attribute, epoch(time)::BIGINT, class_id, value, scaler, unit, status, "
        f"source, epoch(received_at)::BIGINT, quality, flags, value_si, typeof(time), date, "
        f"CAST(timezone('UTC', time) AS DATE) FROM {src}").fetchall()
    assert len(rows) == len(readings)
    by_key = {(r[0], r[1], r[3]): r for r in readings}
    for row in rows:
        r = by_key[(row[0], row[1], row[3])]
        assert tuple(row[:12]) == r, row
        assert row[12] == names(r[11])
        assert row[13] == r[5] / 10 ** -r[6]
        assert row[14] == "TIMESTAMP WITH TIME ZONE"
        assert row[15] == row[16] == day(r[3])

    spikes = con.execute(
        f"SELECT count(*) FROM {src} WHERE list_contains(string_split(flags, ','), 'spike')"
    ).fetchone()[0]
    assert spikes == sum(1 for r in readings if r[11] & 2)
    assert con.execute(f"SELECT count(*) FROM {src} WHERE flags = ''").fetchone()[0] == sum(
        1 for r in readings if r[11] == 0)

    agg = f"read_parquet('{out}/aggregates/**/*.parquet', hive_partitioning = true)"
    got = con.execute(
        f"SELECT period, date, count(*), sum(total), bool_and(complete) FROM {agg} "
        f"GROUP BY ALL ORDER BY ALL").fetchall()
    want = {}
    for a in aggregates:
        k = (a[2], day(a[3]))
        c, s, ok = want.get(k, (0, 0.0, True))
        want[k] = (c + 1, s + a[5], ok and bool(a[7]))
    assert [(p, d) for p, d, *_ in got] == sorted(want)
    for p, d, count, total, complete in got:
        assert (count, complete) == (want[(p, d)][0], want[(p, d)][2])
        assert total == pytest.approx(want[(p, d)][1], rel=1e-12)
    month = con.execute(
        f"SELECT subject, epoch(period_start)::BIGINT, epoch(period_end)::BIGINT, count, quality, "
        f"flags FROM {agg} WHERE period = 'month'").fetchall()
    assert month == [("cell=c-1", 1_793_491_200, 1_796_083_200, 2880, 2, "spike")]


def test_pyarrow_reads_the_same_dataset(exported):
    base, data, out, readings, aggregates = exported
    export(data, out)
    part = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    table = pads.dataset(out / "readings", format="parquet", partitioning=part).to_table()
    assert table.num_rows == len(readings)
    schema = table.schema
    assert schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("received_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("value").type == pa.int64()
    assert schema.field("value_si").type == pa.float64()
    assert schema.field("flags").type == pa.string()
    rows = table.to_pylist()
    by_key = {(r[0], r[1], r[3]): r for r in readings}
    for row in rows:
        t = int(row["time"].timestamp())
        r = by_key[(row["meter"], row["obis"], t)]
        assert row["time"].utcoffset() == dt.timedelta(0)
        assert row["date"] == day(t)
        assert (row["value"], row["scaler"], row["quality"], row["flags"], row["source"]) == (
            r[5], r[6], r[11], names(r[11]), r[9])
    assert sum(row["value_si"] for row in rows) == pytest.approx(
        sum(r[5] / 10 ** -r[6] for r in readings), rel=1e-12)

    aggs = pads.dataset(out / "aggregates", format="parquet", partitioning="hive").to_table()
    assert aggs.num_rows == len(aggregates)
    assert sorted(set(aggs.column("period").to_pylist())) == ["day", "hour", "month"]


def test_datafusion_reads_the_same_dataset(exported):
    base, data, out, readings, aggregates = exported
    export(data, out)
    ctx = SessionContext()
    ctx.register_parquet("readings", f"{out}/readings/", table_partition_cols=[("date", pa.string())],
                         file_extension=".parquet")
    got = ctx.sql("SELECT date, count(*) AS n, sum(value_si) AS s, min(time) AS t FROM readings "
                  "GROUP BY date ORDER BY date").to_pylist()
    want = {}
    for r in readings:
        c, s, t = want.get(day(r[3]), (0, 0.0, r[3]))
        want[day(r[3])] = (c + 1, s + r[5] / 10 ** -r[6], min(t, r[3]))
    assert [g["date"] for g in got] == [str(d) for d in sorted(want)]
    for g in got:
        n, s, t = want[dt.date.fromisoformat(g["date"])]
        assert g["n"] == n and g["s"] == pytest.approx(s, rel=1e-12)
        assert g["t"] == dt.datetime.fromtimestamp(t, dt.timezone.utc)
    ctx.register_parquet("aggregates", f"{out}/aggregates/",
                         table_partition_cols=[("period", pa.string()), ("date", pa.string())],
                         file_extension=".parquet")
    got = ctx.sql("SELECT period, count(*) AS n FROM aggregates GROUP BY period ORDER BY period"
                  ).to_pylist()
    assert [(g["period"], g["n"]) for g in got] == sorted(
        (p, sum(1 for a in aggregates if a[2] == p)) for p in {a[2] for a in aggregates})


def test_a_rerun_replaces_instead_of_adding(exported):
    base, data, out, readings, aggregates = exported
    first = export(data, out)
    before = files(out)
    again = export(data, out)
    assert (again["rows"], again["files"]) == (first["rows"], first["files"])
    assert len(files(out)) == len(before)
    con = duckdb.connect()
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/readings/**/*.parquet')").fetchone()[0]
    assert n == len(readings)
    # One day only: its partitions are replaced, the others stay.
    export(data, out, "--from", "2026-11-27", "--to", "2026-11-27")
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/readings/**/*.parquet')").fetchone()[0]
    assert n == len(readings)


def test_bad_arguments_fail_cleanly(exported):
    base, data, out, _, _ = exported
    for args in (["--data-dir", str(data), "--from", "27/11/2026"],
                 ["--data-dir", str(base / "nowhere")]):
        p = subprocess.run([hes_bin(), "export", "--out", str(base / "bad"), *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, p
        assert "hes export:" in p.stderr and "panicked" not in p.stderr
    assert not (base / "nowhere").exists()
