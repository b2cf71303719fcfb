package org.hes.flink;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The processing stage on Flink (docs/flink.md): hes.readings.validated (ValidatedBatch) →
 * intervals, estimates, hour/day/month aggregates per meter and per group → hes.readings.processed
 * (ProcessedBatch, Kafka transactions: exactly once) and PostgreSQL (readings and aggregates,
 * idempotent upserts).
 *
 * <p>Arguments (--name value): brokers, database-url (jdbc:postgresql://…), namespace (topic and
 * group prefix, as the Rust side's kafka.namespace), group-id, parallelism ("partitions": as many
 * as the validated topic has), checkpoint-ms, retention-days, registry-refresh-s, rules (a
 * rules.json; default: the one packed from crates/hes-rules), out-of-orderness-s, state-backend
 * (rocksdb, the cluster's default, or hashmap).
 */
public final class ProcessingJob {
    private static final Logger LOG = LoggerFactory.getLogger(ProcessingJob.class);

    private ProcessingJob() {}

    static Map<String, String> args(String[] argv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value, got " + argv[i]);
            }
            m.put(argv[i].substring(2), argv[i + 1]);
        }
        return m;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = args(argv);
        String brokers = a.getOrDefault("brokers", "127.0.0.1:19092");
        String db = a.getOrDefault("database-url", "jdbc:postgresql://127.0.0.1:15432/hes?user=postgres");
        String ns = a.getOrDefault("namespace", "");
        String groupId = a.getOrDefault("group-id", ns + "flink-process");
        String validated = ns + "hes.readings.validated";
        String processed = ns + "hes.readings.processed";
        long checkpointMs = Long.parseLong(a.getOrDefault("checkpoint-ms", "5000"));
        long retentionS = Long.parseLong(a.getOrDefault("retention-days", "35")) * 86_400L;
        long refreshMs = Long.parseLong(a.getOrDefault("registry-refresh-s", "30")) * 1000L;
        long lateness = Long.parseLong(a.getOrDefault("out-of-orderness-s", "3600"));
        RuleDefs rules = RuleDefs.load(a.get("rules"));

        Configuration conf = new Configuration();
        if (a.containsKey("state-backend")) {
            // rocksdb (the cluster's default: state on disk) or hashmap (state on the heap,
            // checkpoints on disk).
            conf.set(StateBackendOptions.STATE_BACKEND, a.get("state-backend"));
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        String p = a.getOrDefault("parallelism", "partitions");
        int parallelism = "partitions".equals(p) ? partitions(brokers, validated) : Integer.parseInt(p);
        env.setParallelism(parallelism);
        // Fixed for the job's life: keyed state is split into this many key groups, so that a
        // restart from a savepoint may take any parallelism up to it.
        env.setMaxParallelism(Integer.parseInt(a.getOrDefault("max-parallelism", "128")));
        env.enableCheckpointing(checkpointMs, CheckpointingMode.EXACTLY_ONCE);
        env.getCheckpointConfig().setMinPauseBetweenCheckpoints(Math.min(checkpointMs / 2, 1000));
        // Records are never changed after they are emitted: chained operators may share them.
        env.getConfig().enableObjectReuse();
        LOG.info("hes processing: {} -> {}, parallelism {}", validated, processed, parallelism);

        KafkaSource<Batch> source = KafkaSource.<Batch>builder()
                .setBootstrapServers(brokers)
                .setTopics(validated)
                .setGroupId(groupId)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setProperty("isolation.level", "read_committed")
                .setProperty("commit.offsets.on.checkpoint", "true")
                .setDeserializer(new BatchDeserializer())
                .build();
        WatermarkStrategy<Batch> wm = WatermarkStrategy
                .<Batch>forBoundedOutOfOrderness(Duration.ofSeconds(lateness))
                .withTimestampAssigner((b, ts) -> b.time * 1000L)
                .withIdleness(Duration.ofSeconds(30));
        DataStream<Batch> batches = env.fromSource(source, wm, "validated").uid("validated-source");

        TypeInformation<Tuple2<String, byte[]>> keyed =
                Types.TUPLE(Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        SingleOutputStreamOperator<Tuple2<String, byte[]>> meters = batches
                .keyBy(b -> b.meter)
                .process(new MeterProcessor(rules, db, refreshMs, retentionS), keyed)
                .uid("meters").name("meters: intervals, estimates, aggregates");
        meters.getSideOutput(MeterProcessor.ROWS)
                .sinkTo(new PgSink(db, 20_000)).uid("pg-meters").name("PostgreSQL (meters)");

        SingleOutputStreamOperator<Tuple2<String, byte[]>> groups = meters.getSideOutput(MeterProcessor.MEMBERS)
                .keyBy(m -> m.group)
                .process(new GroupProcessor(db, refreshMs, retentionS), keyed)
                .uid("groups").name("groups: day and month totals");
        groups.getSideOutput(MeterProcessor.ROWS)
                .sinkTo(new PgSink(db, 20_000)).uid("pg-groups").name("PostgreSQL (groups)");

        Properties producer = new Properties();
        // At most the broker's transaction.max.timeout.ms (15 min by default).
        producer.setProperty("transaction.timeout.ms", "600000");
        producer.setProperty("compression.type", "lz4");
        KafkaSink<Tuple2<String, byte[]>> sink = KafkaSink.<Tuple2<String, byte[]>>builder()
                .setBootstrapServers(brokers)
                .setKafkaProducerConfig(producer)
                .setRecordSerializer(new KeyedSerializer(processed))
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(a.getOrDefault("transactional-id-prefix", groupId))
                .build();
        meters.union(groups).sinkTo(sink).uid("processed-sink").name("hes.readings.processed");

        env.execute("hes processing (" + validated + ")");
    }

    static int partitions(String brokers, String topic) throws Exception {
        Properties p = new Properties();
        p.setProperty("bootstrap.servers", brokers);
        try (AdminClient admin = AdminClient.create(p)) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            return d.partitions().size();
        }
    }

    /** ValidatedBatch records, keyed by meter; a record that does not decode is logged and skipped. */
    static final class BatchDeserializer implements KafkaRecordDeserializationSchema<Batch> {
        private static final long serialVersionUID = 1L;

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Batch> out) {
            try {
                hes.v1.Hes.ValidatedBatch b = hes.v1.Hes.ValidatedBatch.parseFrom(record.value());
                if (b.getSchemaVersion() > 1) {
                    throw new IllegalArgumentException("schema_version " + b.getSchemaVersion());
                }
                String key = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
                Batch x = Batch.of(b, key);
                if (x.meter != null && x.times.length > 0) {
                    out.collect(x);
                }
            } catch (Exception e) {
                LOG.warn("{}[{}]@{}: not a ValidatedBatch: {}", record.topic(), record.partition(),
                        record.offset(), e.toString());
            }
        }

        @Override
        public TypeInformation<Batch> getProducedType() {
            return TypeInformation.of(Batch.class);
        }
    }

    static final class KeyedSerializer implements KafkaRecordSerializationSchema<Tuple2<String, byte[]>> {
        private static final long serialVersionUID = 1L;
        private final String topic;

        KeyedSerializer(String topic) {
            this.topic = topic;
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(Tuple2<String, byte[]> e, KafkaSinkContext ctx, Long ts) {
            return new ProducerRecord<>(topic, e.f0.getBytes(StandardCharsets.UTF_8), e.f1);
        }
    }
}
