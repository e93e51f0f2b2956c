"""confluent-kafka (librdkafka) produce/consume round trip.

Creates a topic with AdminClient, produces --records keyed records with acks=all,
the given compression and optionally enable.idempotence=true (partitioner
murmur2_random, as the Java client places keys), checks every delivery report,
then reads everything back with assign() from the beginning (no consumer group)
and checks count, content, per-partition offset order, per-key order, that each
key stayed in one partition, and that every record sits where its delivery report
said. Finally the watermarks (ListOffsets) must add up to the record count.

    python confluent_roundtrip.py --bootstrap 127.0.0.1:9092 --compression zstd --idempotence
"""

import argparse
import time

from common import Verifier, check, deadline, expired, fail, key_of, log, ok, require, unique, value_of

ck = require("confluent_kafka")
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=30, request_timeout=30)
    try:
        futures[topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001 - report whatever the client raised
        fail(f"AdminClient.create_topics({topic}, {partitions} partitions) failed: {e}")
    md = admin.list_topics(topic=topic, timeout=30)
    t = md.topics.get(topic)
    check(t is not None and t.error is None, f"metadata for {topic}: {t and t.error}")
    check(len(t.partitions) == partitions, f"{topic} has {len(t.partitions)} partitions, wanted {partitions}")
    log(f"created {topic} with {partitions} partitions; brokers {[str(b) for b in md.brokers.values()]}")


def produce(bootstrap, topic, records, keys, compression, idempotence):
    errors = []
    fatal = []
    delivered = {}

    def on_error(err):
        log(f"producer error callback: {err}")
        if err.fatal():
            fatal.append(err)

    def on_delivery(err, msg):
        if err is not None:
            errors.append((msg.key(), err))
            return
        i = int(msg.value().split(b"|", 1)[0])
        delivered[i] = (msg.partition(), msg.offset())

    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "compression.type": compression,
        "enable.idempotence": idempotence,
        "partitioner": "murmur2_random",
        "linger.ms": 10,
        "queue.buffering.max.messages": max(records * 2, 100000),
        "message.timeout.ms": 120000,
        "error_cb": on_error,
    }
    producer = Producer(conf)
    started = time.monotonic()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, key=key_of(i, keys), value=value_of(i, keys), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
        if fatal:
            fail(f"producer fatal error: {fatal[0]}")
    remaining = producer.flush(120)
    elapsed = time.monotonic() - started
    check(not fatal, f"producer fatal error: {fatal and fatal[0]}")
    check(remaining == 0, f"{remaining} records still undelivered after flush(120)")
    check(not errors, f"{len(errors)} delivery reports failed, first: {errors[:3]}")
    check(len(delivered) == records, f"{len(delivered)} successful delivery reports for {records} records")
    log(f"produced {records} records ({compression}, idempotence={idempotence}) in {elapsed:.1f}s "
        f"({records / elapsed:.0f} records/s), every delivery report succeeded")
    return delivered


def consume(bootstrap, topic, partitions, records, keys, delivered):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        # confluent-kafka insists on a group.id; with assign() no group is joined and nothing is committed.
        "group.id": unique("interop-assign"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "error_cb": lambda err: log(f"consumer error callback: {err}"),
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    verifier = Verifier(keys, expected=range(records), delivered=delivered)
    at_eof = set()
    started = time.monotonic()
    until = deadline(180)
    while not (verifier.count >= records and len(at_eof) == partitions):
        if expired(until):
            fail(f"consumed {verifier.count} of {records} records in 180s; partitions at end: {sorted(at_eof)}")
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                    continue
                fail(f"consume error on {msg.topic()}/{msg.partition()}: {err}")
            at_eof.discard(msg.partition())
            verifier.add(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
    elapsed = time.monotonic() - started
    verifier.finish(topic)
    check(verifier.count == records, f"consumed {verifier.count} records, produced {records}")

    total = 0
    for p in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        check(low == 0, f"{topic}/{p}: low watermark {low}, expected 0")
        check(high == verifier.last_offset.get((topic, p), -1) + 1,
              f"{topic}/{p}: high watermark {high} but last consumed offset {verifier.last_offset.get((topic, p))}")
        total += high - low
    check(total == records, f"watermarks add up to {total} records, expected {records}")
    consumer.close()
    log(f"consumed {records} records back in {elapsed:.1f}s ({records / elapsed:.0f} records/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--idempotence", action="store_true", help="enable.idempotence=true")
    parser.add_argument("--records", type=int, default=100000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--keys", type=int, default=1000, help="distinct keys")
    args = parser.parse_args()

    log(f"confluent-kafka {ck.version()}, librdkafka {ck.libversion()[0]}")
    topic = unique(f"cfk-{args.compression}-{'idem' if args.idempotence else 'plain'}")
    create_topic(args.bootstrap, topic, args.partitions)
    delivered = produce(args.bootstrap, topic, args.records, args.keys, args.compression, args.idempotence)
    consume(args.bootstrap, topic, args.partitions, args.records, args.keys, delivered)
    ok(f"{args.records} records, compression={args.compression}, idempotence={args.idempotence}, "
       f"{args.partitions} partitions: all delivered and read back intact and in order")


if __name__ == "__main__":
    main()
