package org.hes.flink;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Per meter (the key): stores every validated reading, keeps each cumulative channel's usable
 * entries in keyed state, and for the span a batch touches recomputes the intervals (gaps
 * estimated) and the hour aggregates they fall in, then the days and months those hours roll up
 * into: in event time, so that a late entry updates the periods it belongs to (the same result
 * as a recomputation over everything received, which is what the Rust stage stores). Output:
 * the ProcessedBatch of the changed intervals and aggregates (main), rows for PostgreSQL, and
 * the meter's changed days and months for its groups.
 */
final class MeterProcessor extends KeyedProcessFunction<String, Batch, Tuple2<String, byte[]>> {
    private static final long serialVersionUID = 1L;
    static final OutputTag<PgRow> ROWS = new OutputTag<PgRow>("pg-rows") {};
    static final OutputTag<MemberAgg> MEMBERS = new OutputTag<MemberAgg>("member-aggregates") {};

    private final RuleDefs rules;
    private final String jdbcUrl;
    private final long registryRefreshMs;
    private final long retentionS;
    private transient ValueState<byte[]> state;
    private transient Registry registry;
    private transient Counter readings;
    private transient Counter intervals;
    private transient Counter aggregates;

    MeterProcessor(RuleDefs rules, String jdbcUrl, long registryRefreshMs, long retentionS) {
        this.rules = rules;
        this.jdbcUrl = jdbcUrl;
        this.registryRefreshMs = registryRefreshMs;
        this.retentionS = retentionS;
    }

    @Override
    public void open(OpenContext ctx) {
        state = getRuntimeContext().getState(
                new ValueStateDescriptor<>("meter", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        registry = Registry.of(jdbcUrl, registryRefreshMs);
        readings = getRuntimeContext().getMetricGroup().counter("hesReadings");
        intervals = getRuntimeContext().getMetricGroup().counter("hesIntervals");
        aggregates = getRuntimeContext().getMetricGroup().counter("hesAggregates");
    }

    @Override
    public void processElement(Batch b, Context ctx, Collector<Tuple2<String, byte[]>> out) throws Exception {
        String meter = ctx.getCurrentKey();
        MeterState s = MeterState.decode(state.value());
        // The span of new usable entries per channel.
        Map<String, long[]> touched = new HashMap<>();
        int n = b.times.length;
        for (int i = 0; i < n; i++) {
            PgRow row = new PgRow();
            row.kind = 0;
            row.meter = meter;
            row.obis = b.obis[i];
            row.attribute = b.attribute[i];
            row.time = b.times[i];
            row.classId = b.classId[i];
            row.value = b.value[i];
            row.scaler = b.scaler[i];
            row.unit = b.unit[i];
            row.status = b.status[i];
            row.source = Batch.sourceText(b.source[i]);
            row.receivedAt = b.receivedAt[i];
            row.quality = b.quality[i];
            ctx.output(ROWS, row);
            int[] o = RuleDefs.obis(b.obis[i]);
            if (!rules.isCumulative(b.classId[i], b.attribute[i], o) || (b.quality[i] & rules.skipFlags) != 0) {
                continue;
            }
            MeterState.Channel ch = s.channels.computeIfAbsent(b.obis[i],
                    k -> new MeterState.Channel(k, rules.channel(k, o)));
            MeterState.Entry old = ch.entries.get(b.times[i]);
            if (old != null && old.value <= b.value[i]) {
                continue;
            }
            ch.entries.put(b.times[i], new MeterState.Entry(b.value[i], b.scaler[i], b.unit[i], b.quality[i]));
            long[] span = touched.computeIfAbsent(b.obis[i], k -> new long[] {Long.MAX_VALUE, Long.MIN_VALUE});
            span[0] = Math.min(span[0], b.times[i]);
            span[1] = Math.max(span[1], b.times[i]);
        }
        readings.inc(n);
        hes.v1.Hes.ProcessedBatch.Builder processed = hes.v1.Hes.ProcessedBatch.newBuilder().setSchemaVersion(1);
        List<String> groups = touched.isEmpty() ? List.of() : registry.groupsOf(meter);
        for (Map.Entry<String, long[]> t : touched.entrySet()) {
            MeterState.Channel ch = s.channels.get(t.getKey());
            recompute(meter, ch, t.getValue()[0], t.getValue()[1], processed, groups, ctx);
        }
        prune(s, ctx.timerService().currentWatermark());
        state.update(s.encode());
        emit(meter, processed, out);
    }

    /** At most this many intervals and aggregates in one record, as the Rust stage publishes
     *  (hes_bus::RECORD_ENTRIES): a backfill of months stays far below Kafka's message size. */
    static final int RECORD_ENTRIES = 1000;

    /** The batch's intervals, then its aggregates, as records of at most RECORD_ENTRIES entries
     *  keyed by the meter (one partition: a consumer sees them in order). */
    static void emit(String key, hes.v1.Hes.ProcessedBatch.Builder all, Collector<Tuple2<String, byte[]>> out) {
        List<hes.v1.Hes.Interval> ivs = all.getIntervalsList();
        List<hes.v1.Hes.Aggregate> aggs = all.getAggregatesList();
        int i = 0;
        int a = 0;
        while (i < ivs.size() || a < aggs.size()) {
            hes.v1.Hes.ProcessedBatch.Builder rec = hes.v1.Hes.ProcessedBatch.newBuilder().setSchemaVersion(1);
            int ni = Math.min(RECORD_ENTRIES, ivs.size() - i);
            rec.addAllIntervals(ivs.subList(i, i + ni));
            i += ni;
            int na = Math.min(RECORD_ENTRIES - ni, aggs.size() - a);
            rec.addAllAggregates(aggs.subList(a, a + na));
            a += na;
            out.collect(Tuple2.of(key, rec.build().toByteArray()));
        }
    }

    private void recompute(String meter, MeterState.Channel ch, long lo, long hi,
            hes.v1.Hes.ProcessedBatch.Builder processed, List<String> groups, Context ctx) {
        NavigableMap<Long, MeterState.Entry> e = ch.entries;
        // The spans that changed lie between the entry before the first new one and the entry
        // after the last; the hours they touch are recomputed whole.
        Long before = e.lowerKey(lo);
        Long after = e.higherKey(hi);
        long p = before != null ? before : lo;
        long q = after != null ? after : hi;
        long from = Periods.start(Periods.HOUR, p);
        long to = Periods.end(Periods.HOUR, Periods.start(Periods.HOUR, Math.max(p, q - 1)));
        Long a = e.floorKey(from);
        Long z = e.ceilingKey(to);
        NavigableMap<Long, MeterState.Entry> ctxEntries = e.subMap(a != null ? a : e.firstKey(), true,
                z != null ? z : e.lastKey(), true);
        List<Logic.Iv> ivs = Logic.estimate(rules, Logic.intervals(rules, meter, ctxEntries));
        for (Logic.Iv iv : ivs) {
            if (iv.start >= p && iv.end <= q) {
                processed.addIntervals(hes.v1.Hes.Interval.newBuilder()
                        .setSchemaVersion(1)
                        .setMeter(meter)
                        .setChannel(ch.name)
                        .setIntervalEnd(iv.end)
                        .setIntervalSeconds(iv.end - iv.start)
                        .setValue(iv.wh())
                        .setUnit(rules.unitName(iv.unit))
                        .setQuality(iv.quality));
                intervals.inc();
            }
        }
        TreeMap<Long, MeterState.Agg> hours = Logic.hours(rules, ivs, from, to);
        TreeSet<Long> days = new TreeSet<>();
        for (Map.Entry<Long, MeterState.Agg> h : hours.entrySet()) {
            if (h.getValue().same(ch.hours.get(h.getKey()))) {
                continue;
            }
            ch.hours.put(h.getKey(), h.getValue());
            emit(meter, ch.name, Periods.HOUR, h.getKey(), h.getValue(), processed, List.of(), ctx);
            days.add(Periods.start(Periods.DAY, h.getKey()));
        }
        TreeSet<Long> months = new TreeSet<>();
        for (long d : days) {
            MeterState.Agg agg = Logic.rollup(ch.hours, Periods.HOUR, d, Periods.end(Periods.DAY, d));
            if (agg == null || agg.same(ch.days.get(d))) {
                continue;
            }
            ch.days.put(d, agg);
            emit(meter, ch.name, Periods.DAY, d, agg, processed, groups, ctx);
            months.add(Periods.start(Periods.MONTH, d));
        }
        for (long m : months) {
            MeterState.Agg agg = Logic.rollup(ch.days, Periods.DAY, m, Periods.end(Periods.MONTH, m));
            if (agg != null) {
                emit(meter, ch.name, Periods.MONTH, m, agg, processed, groups, ctx);
            }
        }
    }

    private void emit(String meter, String channel, int period, long start, MeterState.Agg a,
            hes.v1.Hes.ProcessedBatch.Builder processed, List<String> groups, Context ctx) {
        PgRow row = PgRow.aggregate(meter, channel, period, start, a);
        ctx.output(ROWS, row);
        processed.addAggregates(row.toProto());
        aggregates.inc();
        for (String g : groups) {
            MemberAgg m = new MemberAgg();
            m.group = g;
            m.meter = meter;
            m.channel = channel;
            m.period = period;
            m.start = start;
            m.total = a.total;
            m.count = a.count;
            m.complete = a.complete;
            m.quality = a.quality;
            ctx.output(MEMBERS, m);
        }
    }

    /**
     * Forgets what late data can no longer change: entries older than the retention behind the
     * watermark (the newest of them kept: the next interval starts there), hours of days and days
     * of months wholly before it.
     */
    private void prune(MeterState s, long watermarkMs) {
        if (watermarkMs == Long.MIN_VALUE || retentionS <= 0) {
            return;
        }
        long cutoff = Math.floorDiv(watermarkMs, 1000L) - retentionS;
        long dayCut = Periods.start(Periods.DAY, cutoff);
        long monthCut = Periods.start(Periods.MONTH, cutoff);
        for (MeterState.Channel ch : s.channels.values()) {
            Long keep = ch.entries.floorKey(cutoff);
            if (keep != null) {
                ch.entries.headMap(keep, false).clear();
            }
            ch.hours.headMap(dayCut, false).clear();
            ch.days.headMap(monthCut, false).clear();
        }
    }
}
