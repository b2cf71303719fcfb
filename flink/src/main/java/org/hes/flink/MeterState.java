package org.hes.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;

/**
 * One meter's keyed state: per cumulative channel the usable register entries (the Rust
 * intervals' input), and the hour and day aggregates the coarser periods roll up from. Kept as
 * one byte array (a compact encoding of our own) so that the state backend stores one value per
 * meter without a generic serializer.
 */
final class MeterState {
    static final class Entry {
        long value;
        int scaler;
        int unit;
        int quality;

        Entry(long value, int scaler, int unit, int quality) {
            this.value = value;
            this.scaler = scaler;
            this.unit = unit;
            this.quality = quality;
        }
    }

    static final class Agg {
        double total;
        int count;
        boolean complete;
        int quality;

        Agg(double total, int count, boolean complete, int quality) {
            this.total = total;
            this.count = count;
            this.complete = complete;
            this.quality = quality;
        }

        boolean same(Agg o) {
            return o != null && Double.compare(total, o.total) == 0 && count == o.count
                    && complete == o.complete && quality == o.quality;
        }
    }

    static final class Channel {
        final String obis;
        final String name;
        final TreeMap<Long, Entry> entries = new TreeMap<>();
        final TreeMap<Long, Agg> hours = new TreeMap<>();
        final TreeMap<Long, Agg> days = new TreeMap<>();

        Channel(String obis, String name) {
            this.obis = obis;
            this.name = name;
        }
    }

    /** By OBIS text. */
    final TreeMap<String, Channel> channels = new TreeMap<>();

    byte[] encode() throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream(4096);
        DataOutputStream o = new DataOutputStream(bo);
        o.writeByte(1);
        o.writeInt(channels.size());
        for (Channel c : channels.values()) {
            o.writeUTF(c.obis);
            o.writeUTF(c.name);
            o.writeInt(c.entries.size());
            for (Map.Entry<Long, Entry> e : c.entries.entrySet()) {
                o.writeLong(e.getKey());
                o.writeLong(e.getValue().value);
                o.writeByte(e.getValue().scaler);
                o.writeByte(e.getValue().unit);
                o.writeInt(e.getValue().quality);
            }
            writeAggs(o, c.hours);
            writeAggs(o, c.days);
        }
        o.flush();
        return bo.toByteArray();
    }

    private static void writeAggs(DataOutputStream o, TreeMap<Long, Agg> m) throws IOException {
        o.writeInt(m.size());
        for (Map.Entry<Long, Agg> e : m.entrySet()) {
            o.writeLong(e.getKey());
            o.writeDouble(e.getValue().total);
            o.writeInt(e.getValue().count);
            o.writeBoolean(e.getValue().complete);
            o.writeInt(e.getValue().quality);
        }
    }

    static MeterState decode(byte[] b) throws IOException {
        MeterState s = new MeterState();
        if (b == null) {
            return s;
        }
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(b));
        if (in.readByte() != 1) {
            throw new IOException("unknown meter state version");
        }
        int n = in.readInt();
        for (int i = 0; i < n; i++) {
            Channel c = new Channel(in.readUTF(), in.readUTF());
            int m = in.readInt();
            for (int k = 0; k < m; k++) {
                long t = in.readLong();
                c.entries.put(t, new Entry(in.readLong(), in.readByte(), in.readByte() & 0xff, in.readInt()));
            }
            readAggs(in, c.hours);
            readAggs(in, c.days);
            s.channels.put(c.obis, c);
        }
        return s;
    }

    private static void readAggs(DataInputStream in, TreeMap<Long, Agg> m) throws IOException {
        int n = in.readInt();
        for (int k = 0; k < n; k++) {
            long t = in.readLong();
            m.put(t, new Agg(in.readDouble(), in.readInt(), in.readBoolean(), in.readInt()));
        }
    }
}
