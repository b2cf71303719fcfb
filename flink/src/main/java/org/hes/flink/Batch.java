package org.hes.flink;

/**
 * One ValidatedBatch record, decoded once at the source into flat arrays (a Flink POJO whose
 * fields all have fast serializers). {@code time} is the batch's newest reading time (seconds):
 * its event time.
 */
public class Batch {
    public String meter;
    public long time;
    public String[] obis;
    public int[] classId;
    public int[] attribute;
    public long[] times;
    public long[] value;
    public int[] scaler;
    public int[] unit;
    public int[] status;
    public int[] source;
    public long[] receivedAt;
    public int[] quality;

    public Batch() {}

    static Batch of(hes.v1.Hes.ValidatedBatch b, String key) {
        int n = b.getReadingsCount();
        Batch x = new Batch();
        x.meter = key;
        x.obis = new String[n];
        x.classId = new int[n];
        x.attribute = new int[n];
        x.times = new long[n];
        x.value = new long[n];
        x.scaler = new int[n];
        x.unit = new int[n];
        x.status = new int[n];
        x.source = new int[n];
        x.receivedAt = new long[n];
        x.quality = new int[n];
        long newest = Long.MIN_VALUE;
        for (int i = 0; i < n; i++) {
            hes.v1.Hes.ValidatedReading v = b.getReadings(i);
            hes.v1.Hes.Reading r = v.getReading();
            if (x.meter == null || x.meter.isEmpty()) {
                x.meter = r.getMeter();
            }
            x.obis[i] = r.getObis();
            x.classId[i] = r.getClassId();
            x.attribute[i] = r.getAttribute();
            x.times[i] = r.getTime();
            x.value[i] = r.getValue();
            x.scaler[i] = r.getScaler();
            x.unit[i] = r.getUnit();
            x.status[i] = r.getStatus();
            x.source[i] = r.getSourceValue();
            x.receivedAt[i] = r.getReceivedAt();
            x.quality[i] = v.getQuality();
            newest = Math.max(newest, r.getTime());
        }
        x.time = n == 0 ? 0 : newest;
        return x;
    }

    static String sourceText(int s) {
        switch (s) {
            case 2:
                return "on_demand";
            case 3:
                return "push";
            default:
                return "scheduled";
        }
    }
}
