package org.hes.flink;

/** A meter's day or month aggregate, sent to each group the meter is in (keyed by the group). */
public class MemberAgg {
    public String group;
    public String meter;
    public String channel;
    public int period;
    public long start;
    public double total;
    public int count;
    public boolean complete;
    public int quality;

    public MemberAgg() {}
}
