"""kafka-python 2.x: admin, producer and assign()-based consumer.

1. KafkaAdminClient creates two topics (3 partitions each), sees them in
   list_topics / describe_topics / describe_cluster, and the consumer's
   metadata (topics(), partitions_for_topic()) agrees.
2. KafkaProducer (acks=all) sends --records keyed records to the first topic
   uncompressed and to the second with gzip; every send future must succeed.
3. KafkaConsumer without a group: assign() all partitions, seek_to_beginning(),
   poll until everything is back; checks content, order per partition and key,
   record placement against the send results, and end_offsets().
4. KafkaAdminClient deletes both topics; they disappear from the metadata.

    python kafka_python_roundtrip.py --bootstrap 127.0.0.1:9092
"""

import argparse
import time

from common import Verifier, check, deadline, expired, fail, key_of, log, ok, require, unique, value_of

kafka = require("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

PARTITIONS = 3


def admin_create(admin, topics):
    admin.create_topics([NewTopic(name=t, num_partitions=PARTITIONS, replication_factor=1) for t in topics],
                        timeout_ms=30000)
    names = set(admin.list_topics())
    for t in topics:
        check(t in names, f"list_topics() does not show {t}: {sorted(names)[:20]}")
    described = admin.describe_topics(topics)
    for d in described:
        check(d.get("error_code", 0) == 0, f"describe_topics error for {d.get('topic')}: {d}")
        check(len(d["partitions"]) == PARTITIONS,
              f"describe_topics: {d['topic']} has {len(d['partitions'])} partitions, wanted {PARTITIONS}")
    cluster = admin.describe_cluster()
    brokers = cluster.get("brokers", [])
    check(len(brokers) >= 1, f"describe_cluster() lists no brokers: {cluster}")
    log(f"created {topics}; cluster {cluster.get('cluster_id')} with brokers "
        f"{[(b.get('node_id'), b.get('host'), b.get('port')) for b in brokers]}")


def produce(bootstrap, topic, records, keys, compression):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=compression,
        linger_ms=5,
        key_serializer=str.encode,
        value_serializer=str.encode,
    )
    started = time.monotonic()
    futures = [(i, producer.send(topic, key=key_of(i, keys), value=value_of(i, keys))) for i in range(records)]
    producer.flush(timeout=60)
    delivered = {}
    for i, future in futures:
        try:
            md = future.get(timeout=30)
        except Exception as e:  # noqa: BLE001 - report whatever the client raised
            fail(f"send of record {i} to {topic} ({compression}) failed: {e!r}")
        delivered[i] = (md.partition, md.offset)
    producer.close(timeout=10)
    log(f"produced {records} records to {topic} (compression={compression}) in "
        f"{time.monotonic() - started:.1f}s, every send succeeded")
    return delivered


def consume(bootstrap, topic, records, keys, delivered):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        key_deserializer=bytes.decode,
        value_deserializer=bytes.decode,
    )
    check(topic in consumer.topics(), f"consumer metadata does not list {topic}")
    partitions = consumer.partitions_for_topic(topic)
    check(partitions == set(range(PARTITIONS)), f"partitions_for_topic({topic}) = {partitions}")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    verifier = Verifier(keys, expected=range(records), delivered=delivered)
    until = deadline(120)
    while verifier.count < records:
        if expired(until):
            fail(f"{topic}: consumed {verifier.count} of {records} records in 120s")
        for tp, batch in consumer.poll(timeout_ms=1000, max_records=1000).items():
            for r in batch:
                verifier.add(r.topic, r.partition, r.offset, r.key, r.value)
    # Anything beyond the expected records would be a duplicate: give it a moment to show up.
    for tp, batch in consumer.poll(timeout_ms=500).items():
        for r in batch:
            verifier.add(r.topic, r.partition, r.offset, r.key, r.value)
    verifier.finish(topic)
    check(verifier.count == records, f"{topic}: consumed {verifier.count} records, produced {records}")
    ends = consumer.end_offsets(tps)
    begins = consumer.beginning_offsets(tps)
    total = sum(ends[tp] - begins[tp] for tp in tps)
    check(total == records, f"{topic}: end_offsets - beginning_offsets = {total}, expected {records}")
    for tp in tps:
        check(ends[tp] == verifier.last_offset.get((topic, tp.partition), -1) + 1,
              f"{topic}/{tp.partition}: end offset {ends[tp]} but last consumed {verifier.last_offset.get((topic, tp.partition))}")
    consumer.close()
    log(f"consumed {records} records back from {topic}")


def admin_delete(admin, topics):
    admin.delete_topics(topics, timeout_ms=30000)
    until = deadline(30)
    while True:
        left = set(topics) & set(admin.list_topics())
        if not left:
            break
        if expired(until):
            fail(f"topics {sorted(left)} still listed 30s after delete_topics")
        time.sleep(0.2)
    log(f"deleted {topics}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=50)
    args = parser.parse_args()

    log(f"kafka-python {kafka.__version__}")
    plain, gzipped = unique("kp-plain"), unique("kp-gzip")
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="fjord-interop", request_timeout_ms=30000)
    admin_create(admin, [plain, gzipped])
    for topic, compression in ((plain, None), (gzipped, "gzip")):
        delivered = produce(args.bootstrap, topic, args.records, args.keys, compression)
        consume(args.bootstrap, topic, args.records, args.keys, delivered)
    admin_delete(admin, [plain, gzipped])
    admin.close()
    ok(f"kafka-python {kafka.__version__}: admin create/describe/delete, {args.records} records plain and gzip "
       f"produced and read back")


if __name__ == "__main__":
    main()
