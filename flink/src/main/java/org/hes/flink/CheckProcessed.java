package org.hes.flink;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a processed topic from the beginning as an integrator would (read_committed) and prints
 * what it holds: records, intervals, distinct (meter, channel, interval end) of single intervals,
 * and duplicates (an identical interval published twice: what an aborted transaction that was
 * not aborted would leave). Used by scripts/flink-check:
 * {@code java -cp JAR org.hes.flink.CheckProcessed BROKERS TOPIC}.
 */
public final class CheckProcessed {
    private CheckProcessed() {}

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("bootstrap.servers", args[0]);
        p.setProperty("isolation.level", "read_committed");
        p.setProperty("enable.auto.commit", "false");
        p.setProperty("key.deserializer", ByteArrayDeserializer.class.getName());
        p.setProperty("value.deserializer", ByteArrayDeserializer.class.getName());
        long records = 0;
        long intervals = 0;
        long aggregates = 0;
        long duplicates = 0;
        Map<String, Integer> seen = new HashMap<>();
        Map<String, Long> singles = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo i : c.partitionsFor(args[1])) {
                parts.add(new TopicPartition(i.topic(), i.partition()));
            }
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            while (true) {
                boolean done = true;
                for (TopicPartition tp : parts) {
                    // With read_committed the end offset is the last stable offset; markers may
                    // sit past the last record, so compare positions, not record offsets.
                    if (c.position(tp) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    records++;
                    hes.v1.Hes.ProcessedBatch b = hes.v1.Hes.ProcessedBatch.parseFrom(r.value());
                    aggregates += b.getAggregatesCount();
                    for (hes.v1.Hes.Interval iv : b.getIntervalsList()) {
                        intervals++;
                        String k = iv.getMeter() + "|" + iv.getChannel() + "|" + iv.getIntervalEnd() + "|"
                                + iv.getIntervalSeconds() + "|" + iv.getValue() + "|" + iv.getQuality();
                        if (seen.merge(k, 1, Integer::sum) > 1) {
                            duplicates++;
                        }
                        if (iv.getIntervalSeconds() == 900) {
                            singles.merge(iv.getMeter() + "|" + iv.getChannel() + "|" + iv.getIntervalEnd(), 1L,
                                    Long::sum);
                        }
                    }
                }
            }
        }
        System.out.println("records=" + records + " intervals=" + intervals + " aggregates=" + aggregates
                + " distinct_single_intervals=" + singles.size() + " duplicates=" + duplicates);
    }
}
