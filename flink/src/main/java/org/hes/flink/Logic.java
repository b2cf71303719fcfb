package org.hes.flink;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * The interval, estimation and aggregation steps of crates/hes-rules (interval.rs, estimate.rs,
 * aggregate.rs) over one channel, with every parameter from {@link RuleDefs}. The differential
 * test (scripts/flink-check) compares what this computes with the Rust stage row by row.
 */
final class Logic {
    private Logic() {}

    static final class Iv {
        final long start;
        final long end;
        final long value;
        final int scaler;
        final int unit;
        final int quality;

        Iv(long start, long end, long value, int scaler, int unit, int quality) {
            this.start = start;
            this.end = end;
            this.value = value;
            this.scaler = scaler;
            this.unit = unit;
            this.quality = quality;
        }

        double wh() {
            return RuleDefs.scaled(value, scaler);
        }
    }

    /** intervals_with over consecutive entries (already deduplicated per time, usable only). */
    static List<Iv> intervals(RuleDefs r, String meter, NavigableMap<Long, MeterState.Entry> entries) {
        List<Iv> out = new ArrayList<>();
        Map.Entry<Long, MeterState.Entry> prev = null;
        for (Map.Entry<Long, MeterState.Entry> cur : entries.entrySet()) {
            if (prev != null) {
                long a = prev.getKey();
                long b = cur.getKey();
                MeterState.Entry ea = prev.getValue();
                MeterState.Entry eb = cur.getValue();
                long seconds = b - a;
                int q = eb.quality & ~(r.missingBefore | r.rollover);
                if (seconds > r.interval) {
                    q |= r.missingBefore;
                }
                long value = eb.value - ea.value;
                boolean ok = true;
                if (value < 0) {
                    if (r.isRollover(meter, ea.value, eb.value, eb.scaler, seconds)) {
                        value += r.registerModulus;
                        q |= r.rollover;
                    } else {
                        ok = false;
                    }
                }
                if (ok) {
                    out.add(new Iv(a, b, value, eb.scaler, eb.unit, q));
                }
            }
            prev = cur;
        }
        return out;
    }

    /** estimate_gaps_with: whole-interval gaps shared equally, flagged ESTIMATED. */
    static List<Iv> estimate(RuleDefs r, List<Iv> ivs) {
        long interval = Math.max(1, r.interval);
        List<Iv> out = new ArrayList<>(ivs.size());
        for (Iv iv : ivs) {
            long seconds = iv.end - iv.start;
            if (seconds <= interval || seconds % interval != 0) {
                out.add(iv);
                continue;
            }
            long n = seconds / interval;
            long base = Math.floorDiv(iv.value, n);
            long rem = Math.floorMod(iv.value, n);
            int q = (iv.quality & ~r.missingBefore) | r.estimated;
            for (long k = 0; k < n; k++) {
                out.add(new Iv(iv.start + k * interval, iv.start + (k + 1) * interval,
                        base + (k < rem ? 1 : 0), iv.scaler, iv.unit, q));
            }
        }
        return out;
    }

    private static final class Partial {
        double total;
        int count;
        boolean gap;
        int quality;
    }

    /** accumulate + finish for hours: the hour aggregates of the hours in [from, to). */
    static TreeMap<Long, MeterState.Agg> hours(RuleDefs r, List<Iv> ivs, long from, long to) {
        long interval = Math.max(1, r.interval);
        TreeMap<Long, Partial> acc = new TreeMap<>();
        Set<String> seen = new HashSet<>();
        for (Iv iv : ivs) {
            if (!seen.add(iv.start + ":" + iv.end)) {
                continue;
            }
            long p = Periods.start(Periods.HOUR, iv.start);
            boolean whole = Periods.start(Periods.HOUR, iv.end - 1) == p;
            boolean single = iv.end - iv.start == interval;
            if (single) {
                touch(acc, p, iv.wh(), true, false, iv.quality, r);
            } else if (whole) {
                touch(acc, p, iv.wh(), false, true, iv.quality, r);
            } else {
                for (long s = p; s < iv.end; s = Periods.end(Periods.HOUR, s)) {
                    touch(acc, s, Double.NaN, false, true, iv.quality, r);
                }
            }
        }
        TreeMap<Long, MeterState.Agg> out = new TreeMap<>();
        long expected = 3600 / interval;
        for (Map.Entry<Long, Partial> e : acc.subMap(from, true, to, false).entrySet()) {
            Partial p = e.getValue();
            out.put(e.getKey(), new MeterState.Agg(p.total, p.count, !p.gap && p.count == expected, p.quality));
        }
        return out;
    }

    private static void touch(TreeMap<Long, Partial> acc, long p, double add, boolean count, boolean gap,
            int quality, RuleDefs r) {
        Partial e = acc.computeIfAbsent(p, k -> new Partial());
        if (!Double.isNaN(add)) {
            e.total += add;
        }
        if (count) {
            e.count += 1;
        }
        e.gap |= gap;
        e.quality |= gap ? (quality | r.missingBefore) : quality;
    }

    /** rollup of the finer aggregates of one coarse period (those in [start, end) of `fine`). */
    static MeterState.Agg rollup(NavigableMap<Long, MeterState.Agg> fine, int finePeriod, long start, long end) {
        NavigableMap<Long, MeterState.Agg> in = fine.subMap(start, true, end, false);
        if (in.isEmpty()) {
            return null;
        }
        double total = 0;
        int count = 0;
        boolean complete = true;
        int q = 0;
        for (MeterState.Agg a : in.values()) {
            total += a.total;
            count += a.count;
            complete &= a.complete;
            q |= a.quality;
        }
        int expected = 0;
        for (long s = start; s < end && expected < 10_000; s = Periods.end(finePeriod, s)) {
            expected++;
        }
        return new MeterState.Agg(total, count, complete && in.size() == expected, q);
    }
}
