package org.hes.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Group membership from the meter registry (table `meters`, column `groups`: a JSON object,
 * {"cell": "cell-3"} makes the group "cell=cell-3"), as a lookup: one snapshot per TaskManager
 * JVM and database, reloaded when older than the refresh period.
 */
final class Registry {
    private static final Logger LOG = LoggerFactory.getLogger(Registry.class);
    private static final Map<String, Registry> BY_URL = new HashMap<>();

    private final String url;
    private final long refreshMs;
    private volatile Map<String, List<String>> groupsOf = Collections.emptyMap();
    private volatile Map<String, Integer> members = Collections.emptyMap();
    private volatile long loadedAt = 0;

    private Registry(String url, long refreshMs) {
        this.url = url;
        this.refreshMs = refreshMs;
    }

    static synchronized Registry of(String url, long refreshMs) {
        return BY_URL.computeIfAbsent(url, u -> new Registry(u, refreshMs));
    }

    private void maybeReload() {
        long now = System.currentTimeMillis();
        if (now - loadedAt < refreshMs) {
            return;
        }
        synchronized (this) {
            if (now - loadedAt < refreshMs) {
                return;
            }
            // The driver directly: DriverManager does not see drivers of the job's class loader.
            try (Connection c = new org.postgresql.Driver().connect(url, new java.util.Properties());
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT id, groups FROM meters")) {
                ObjectMapper m = new ObjectMapper();
                Map<String, List<String>> of = new HashMap<>();
                Map<String, Integer> count = new HashMap<>();
                while (rs.next()) {
                    JsonNode g = m.readTree(rs.getString(2));
                    List<String> gs = new ArrayList<>();
                    for (Iterator<Map.Entry<String, JsonNode>> it = g.fields(); it.hasNext(); ) {
                        Map.Entry<String, JsonNode> e = it.next();
                        String name = e.getKey() + "=" + e.getValue().asText();
                        gs.add(name);
                        count.merge(name, 1, Integer::sum);
                    }
                    of.put(rs.getString(1), gs);
                }
                groupsOf = of;
                members = count;
                loadedAt = now;
            } catch (SQLException | java.io.IOException e) {
                if (loadedAt == 0) {
                    // Without any snapshot group totals would be wrong: fail, the job restarts.
                    throw new IllegalStateException("meter registry not loaded", e);
                }
                // Keep the last snapshot; try again on the next lookup after a short pause.
                LOG.warn("meter registry not reloaded: {}", e.toString());
                loadedAt = now - refreshMs + 1000;
            }
        }
    }

    List<String> groupsOf(String meter) {
        maybeReload();
        return groupsOf.getOrDefault(meter, Collections.emptyList());
    }

    int members(String group) {
        maybeReload();
        return members.getOrDefault(group, 0);
    }
}
