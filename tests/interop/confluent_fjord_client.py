"""confluent-kafka (librdkafka 2.16) on one side, fjord-client (the `fjord` binary) on the other.

Modes (the Rust harness in crates/cli/tests/interop.rs runs `fjord produce`/`fjord consume`
between them):
  produce  Writes --records keyed records ("key_of(i)" -> "value_of(i)") to --topic with
           --compression, acks=all, idempotent, partitioner murmur2_random (the Java client's
           placement), and checks every delivery report.
  consume  Reads --topic from the beginning with assign() until --records records arrived and
           prints one line per record: "<partition> <key>:<value>". Any error fails.

    python confluent_fjord_client.py produce --bootstrap 127.0.0.1:9092 --topic t --compression zstd
    python confluent_fjord_client.py consume --bootstrap 127.0.0.1:9092 --topic t
"""

import argparse
import sys

from common import check, deadline, expired, fail, key_of, log, ok, require, value_of

ck = require("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402


def produce(args):
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": args.compression,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
    })
    failures = []

    def report(err, msg):
        if err is not None:
            failures.append(str(err))

    for i in range(args.records):
        while True:
            try:
                producer.produce(args.topic, key=key_of(i, args.keys), value=value_of(i, args.keys),
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    check(remaining == 0, f"{remaining} records not delivered within 60 s")
    check(not failures, f"delivery failures: {failures[:5]}")
    log(f"produced {args.records} records with {args.compression}")
    ok(f"produced {args.records}")


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "unused-assign-only",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    metadata = consumer.list_topics(args.topic, timeout=30)
    topic = metadata.topics.get(args.topic)
    check(topic is not None and topic.error is None, f"topic {args.topic} not found: {topic}")
    consumer.assign([TopicPartition(args.topic, p, ck.OFFSET_BEGINNING) for p in topic.partitions])
    lines = []
    until = deadline(60)
    while len(lines) < args.records:
        if expired(until):
            fail(f"only {len(lines)} of {args.records} records within 60 s")
        for m in consumer.consume(num_messages=1000, timeout=0.5):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                fail(f"consume error: {m.error()}")
            key = m.key().decode() if m.key() is not None else ""
            value = m.value().decode() if m.value() is not None else ""
            lines.append(f"{m.partition()} {key}:{value}")
    consumer.close()
    sys.stdout.write("".join(line + "\n" for line in lines))
    ok(f"consumed {len(lines)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=17)
    args = parser.parse_args()
    if args.mode == "produce":
        produce(args)
    else:
        consume(args)


if __name__ == "__main__":
    main()
