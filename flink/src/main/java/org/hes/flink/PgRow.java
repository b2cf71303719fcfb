package org.hes.flink;

/**
 * A row for PostgreSQL: a reading (kind 0, the columns of `readings`) or an aggregate (kind 1,
 * the columns of `aggregates`). One flat POJO so that the sink takes one stream.
 */
public class PgRow {
    public int kind;
    // readings
    public String meter;
    public String obis;
    public int attribute;
    public long time;
    public int classId;
    public long value;
    public int scaler;
    public int unit;
    public int status;
    public String source;
    public long receivedAt;
    // both
    public int quality;
    // aggregates
    public String subject;
    public String channel;
    public String period;
    public long periodStart;
    public long periodEnd;
    public double total;
    public int count;
    public boolean complete;

    public PgRow() {}

    static PgRow aggregate(String subject, String channel, int period, long start, MeterState.Agg a) {
        PgRow r = new PgRow();
        r.kind = 1;
        r.subject = subject;
        r.channel = channel;
        r.period = Periods.name(period);
        r.periodStart = start;
        r.periodEnd = Periods.end(period, start);
        r.total = a.total;
        r.count = a.count;
        r.complete = a.complete;
        r.quality = a.quality;
        return r;
    }

    hes.v1.Hes.Aggregate toProto() {
        int p = "hour".equals(period) ? 1 : "day".equals(period) ? 2 : 3;
        return hes.v1.Hes.Aggregate.newBuilder()
                .setSchemaVersion(1)
                .setSubject(subject)
                .setChannel(channel)
                .setPeriodValue(p)
                .setPeriodStart(periodStart)
                .setTotal(total)
                .setIntervals(count)
                .setComplete(complete)
                .setQuality(quality)
                .build();
    }
}
