package org.hes.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * The processing rules as the Rust side defines them: crates/hes-rules/rules.json, written from
 * the Rust constants and checked against them by a Rust test. Nothing here is a second copy of
 * a threshold, a channel name or a unit: it is all read from that file.
 */
public final class RuleDefs implements Serializable {
    private static final long serialVersionUID = 1L;

    public final long interval;
    public final long registerModulus;
    public final double maxPowerW;
    public final Map<String, Double> meterMaxPowerW = new HashMap<>();
    public final int cumulativeClass;
    public final int cumulativeAttribute;
    public final int cumulativeA;
    public final boolean[] cumulativeC = new boolean[256];
    public final int cumulativeD;
    public final int skipFlags;
    public final int missingBefore;
    public final int rollover;
    public final int estimated;
    /** "C.D.E" (A = 1) to the channel name. */
    public final Map<String, String> channels = new HashMap<>();
    public final Map<Integer, String> units = new HashMap<>();

    private RuleDefs(JsonNode j) {
        if (j.path("schema_version").asInt() != 1) {
            throw new IllegalArgumentException("rules.json: unknown schema_version");
        }
        if (!"linear".equals(j.path("estimation").asText())) {
            throw new IllegalArgumentException("rules.json: unknown estimation method");
        }
        interval = j.path("interval").asLong();
        registerModulus = j.path("register_modulus").asLong();
        maxPowerW = j.path("max_power_w").asDouble();
        for (Iterator<Map.Entry<String, JsonNode>> it = j.path("meter_max_power_w").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            meterMaxPowerW.put(e.getKey(), e.getValue().asDouble());
        }
        JsonNode c = j.path("cumulative");
        cumulativeClass = c.path("class_id").asInt();
        cumulativeAttribute = c.path("attribute").asInt();
        cumulativeA = c.path("a").asInt();
        for (JsonNode v : c.path("c")) {
            cumulativeC[v.asInt() & 0xff] = true;
        }
        cumulativeD = c.path("d").asInt();
        skipFlags = j.path("skip_flags").asInt();
        JsonNode f = j.path("flags");
        missingBefore = f.path("missing_before").asInt();
        rollover = f.path("rollover").asInt();
        estimated = f.path("estimated").asInt();
        for (Iterator<Map.Entry<String, JsonNode>> it = j.path("channels").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            channels.put(e.getKey(), e.getValue().asText());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = j.path("units").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            units.put(Integer.parseInt(e.getKey()), e.getValue().asText());
        }
        if (interval <= 0 || missingBefore == 0 || estimated == 0 || channels.isEmpty()) {
            throw new IllegalArgumentException("rules.json is incomplete");
        }
    }

    /** From a file, or the copy packed into the job's jar when path is null. */
    public static RuleDefs load(String path) throws IOException {
        ObjectMapper m = new ObjectMapper();
        if (path != null && !path.isEmpty()) {
            return new RuleDefs(m.readTree(Files.readAllBytes(Path.of(path))));
        }
        try (InputStream in = RuleDefs.class.getResourceAsStream("/rules.json")) {
            if (in == null) {
                throw new IOException("rules.json is not in the jar");
            }
            return new RuleDefs(m.readTree(in));
        }
    }

    /** Parsed dotted OBIS "A.B.C.D.E.F", or null. */
    public static int[] obis(String s) {
        String[] p = s.split("\\.");
        if (p.length != 6) {
            return null;
        }
        int[] o = new int[6];
        try {
            for (int i = 0; i < 6; i++) {
                o[i] = Integer.parseInt(p[i]);
                if (o[i] < 0 || o[i] > 255) {
                    return null;
                }
            }
        } catch (NumberFormatException e) {
            return null;
        }
        return o;
    }

    public boolean isCumulative(int classId, int attribute, int[] o) {
        return o != null && classId == cumulativeClass && attribute == cumulativeAttribute
                && o[0] == cumulativeA && cumulativeC[o[2]] && o[3] == cumulativeD;
    }

    /** The channel name, or the OBIS text when the rules name none. */
    public String channel(String obisText, int[] o) {
        if (o == null || o[0] != 1) {
            return obisText;
        }
        String n = channels.get(o[2] + "." + o[3] + "." + o[4]);
        return n != null ? n : obisText;
    }

    public String unitName(int code) {
        String n = units.get(code);
        return n != null ? n : Integer.toString(code);
    }

    /** raw × 10^scaler, computed as the Rust side does (powi: exact powers, reciprocal below 0). */
    public static double scaled(long raw, int scaler) {
        int n = Math.abs(scaler);
        double p = 1.0;
        double b = 10.0;
        while (n > 0) {
            if ((n & 1) == 1) {
                p *= b;
            }
            b *= b;
            n >>= 1;
        }
        return (double) raw * (scaler < 0 ? 1.0 / p : p);
    }

    public double maxEnergyWh(String meter, long seconds) {
        double p = meterMaxPowerW.getOrDefault(meter, maxPowerW);
        return p * (double) seconds / 3600.0;
    }

    public boolean isRollover(String meter, long v0, long v1, int scaler, long seconds) {
        long m = registerModulus;
        if (v1 >= v0 || v0 >= m || v1 < 0 || v0 <= m - m / 10 || v1 >= m / 10) {
            return false;
        }
        long unwrapped = v1 + m - v0;
        return scaled(unwrapped, scaler) <= maxEnergyWh(meter, Math.max(seconds, interval));
    }
}
