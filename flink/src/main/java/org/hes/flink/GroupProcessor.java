package org.hes.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Per group (the key, "key=value"): the members' latest day and month aggregates, and the
 * group's total over them (hes_rules::group_total: complete when every member of the registry
 * has a complete aggregate), emitted each time a member's changes. Event-time timers forget a
 * period once the watermark is the retention past its end.
 */
final class GroupProcessor extends KeyedProcessFunction<String, MemberAgg, Tuple2<String, byte[]>> {
    private static final long serialVersionUID = 1L;

    private final String jdbcUrl;
    private final long registryRefreshMs;
    private final long retentionS;
    private transient MapState<String, byte[]> periods;
    private transient Registry registry;

    GroupProcessor(String jdbcUrl, long registryRefreshMs, long retentionS) {
        this.jdbcUrl = jdbcUrl;
        this.registryRefreshMs = registryRefreshMs;
        this.retentionS = retentionS;
    }

    @Override
    public void open(OpenContext ctx) {
        periods = getRuntimeContext().getMapState(new MapStateDescriptor<>("periods", Types.STRING,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        registry = Registry.of(jdbcUrl, registryRefreshMs);
    }

    @Override
    public void processElement(MemberAgg m, Context ctx, Collector<Tuple2<String, byte[]>> out) throws Exception {
        String key = m.channel + "|" + m.period + "|" + m.start;
        TreeMap<String, MeterState.Agg> members = decode(periods.get(key));
        boolean fresh = members.isEmpty();
        members.put(m.meter, new MeterState.Agg(m.total, m.count, m.complete, m.quality));
        periods.put(key, encode(members));
        if (fresh && retentionS > 0) {
            ctx.timerService().registerEventTimeTimer((Periods.end(m.period, m.start) + retentionS) * 1000L);
        }
        double total = 0;
        int count = 0;
        boolean complete = true;
        int q = 0;
        for (MeterState.Agg a : members.values()) {
            total += a.total;
            count += a.count;
            complete &= a.complete;
            q |= a.quality;
        }
        complete &= members.size() == registry.members(m.group);
        PgRow row = PgRow.aggregate(m.group, m.channel, m.period, m.start,
                new MeterState.Agg(total, count, complete, q));
        ctx.output(MeterProcessor.ROWS, row);
        out.collect(Tuple2.of(m.group, hes.v1.Hes.ProcessedBatch.newBuilder().setSchemaVersion(1)
                .addAggregates(row.toProto()).build().toByteArray()));
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Tuple2<String, byte[]>> out) throws Exception {
        long cutoff = timestamp / 1000L - retentionS;
        for (Iterator<Map.Entry<String, byte[]>> it = periods.iterator(); it.hasNext(); ) {
            String[] k = it.next().getKey().split("\\|");
            int period = Integer.parseInt(k[1]);
            if (Periods.end(period, Long.parseLong(k[2])) <= cutoff) {
                it.remove();
            }
        }
    }

    private static byte[] encode(TreeMap<String, MeterState.Agg> m) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        DataOutputStream o = new DataOutputStream(bo);
        o.writeInt(m.size());
        for (Map.Entry<String, MeterState.Agg> e : m.entrySet()) {
            o.writeUTF(e.getKey());
            o.writeDouble(e.getValue().total);
            o.writeInt(e.getValue().count);
            o.writeBoolean(e.getValue().complete);
            o.writeInt(e.getValue().quality);
        }
        o.flush();
        return bo.toByteArray();
    }

    private static TreeMap<String, MeterState.Agg> decode(byte[] b) throws IOException {
        TreeMap<String, MeterState.Agg> m = new TreeMap<>();
        if (b == null) {
            return m;
        }
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(b));
        int n = in.readInt();
        for (int i = 0; i < n; i++) {
            m.put(in.readUTF(), new MeterState.Agg(in.readDouble(), in.readInt(), in.readBoolean(), in.readInt()));
        }
        return m;
    }
}
