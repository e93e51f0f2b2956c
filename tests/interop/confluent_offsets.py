"""confluent-kafka: committed group offsets survive broker restarts.

Two phases, run by the Rust harness around broker restarts, sharing a JSON --state file:
  commit  Creates a 3-partition topic, produces --records records, consumes all of
          them in a new group (subscribe), commits synchronously, closes, and checks
          committed() is at the high watermarks. Saves topic, group and offsets.
  verify  (after a restart) committed() must still return the saved offsets. Then
          produces --more records, and a consumer in the same group must receive
          exactly those new records (nothing before the committed offsets); it
          commits, closes, and the state is updated for the next restart.

    python confluent_offsets.py commit --bootstrap 127.0.0.1:9092 --state /tmp/x/state.json
    python confluent_offsets.py verify --bootstrap 127.0.0.1:9092 --state /tmp/x/state.json
"""

import argparse
import json
import time

from common import Verifier, check, deadline, expired, fail, key_of, log, ok, require, unique, value_of

ck = require("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

PARTITIONS = 3
KEYS = 30


def produce(bootstrap, topic, first, count):
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "partitioner": "murmur2_random", "linger.ms": 5})
    for i in range(first, first + count):
        producer.produce(topic, key=key_of(i, KEYS), value=value_of(i, KEYS),
                         on_delivery=lambda err, msg: err is not None and errors.append(err))
    check(producer.flush(60) == 0, "records left undelivered after flush(60)")
    check(not errors, f"{len(errors)} delivery errors, first {errors[:3]}")
    log(f"produced records {first}..{first + count - 1} to {topic}")


def new_consumer(bootstrap, group):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "error_cb": lambda err: log(f"consumer error callback: {err}"),
    })


def committed(consumer, topic):
    result = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    for tp in result:
        check(tp.error is None, f"committed() error on partition {tp.partition}: {tp.error}")
    return {tp.partition: tp.offset for tp in result}


def high_watermarks(consumer, topic):
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
            for p in range(PARTITIONS)}


def consume_exactly(consumer, topic, expected):
    """Subscribes and consumes until every record in `expected` arrived; anything else fails."""
    consumer.subscribe([topic])
    verifier = Verifier(KEYS, expected=expected)
    until = deadline(120)
    last_offsets = {}
    while verifier.count < len(expected):
        if expired(until):
            fail(f"consumed {verifier.count} of {len(expected)} expected records within 120s")
        for msg in consumer.consume(num_messages=1000, timeout=1.0):
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    fail(f"consume error: {err}")
                continue
            verifier.add(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
            last_offsets[msg.partition()] = msg.offset() + 1
    # Anything beyond the expected records (e.g. re-delivered old ones) would show up now.
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        for msg in consumer.consume(num_messages=1000, timeout=0.2):
            if msg.error() is None:
                verifier.add(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
    verifier.finish(topic)
    check(verifier.count == len(expected), f"consumed {verifier.count} records, expected {len(expected)}")
    commits = consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in last_offsets.items()],
                              asynchronous=False)
    for tp in commits:
        check(tp.error is None, f"commit of partition {tp.partition} failed: {tp.error}")


def phase_commit(args):
    topic, group = unique("offsets"), unique("offsets-group")
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                            operation_timeout=30)[topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001
        fail(f"create_topics({topic}) failed: {e}")
    produce(args.bootstrap, topic, 0, args.records)
    consumer = new_consumer(args.bootstrap, group)
    consume_exactly(consumer, topic, range(args.records))
    offsets = committed(consumer, topic)
    highs = high_watermarks(consumer, topic)
    consumer.close()
    check(offsets == highs, f"committed offsets {offsets} are not the high watermarks {highs}")
    with open(args.state, "w") as f:
        json.dump({"topic": topic, "group": group, "produced": args.records,
                   "committed": {str(p): o for p, o in offsets.items()}}, f)
    ok(f"group {group} consumed and committed {args.records} records: {offsets}")


def phase_verify(args):
    with open(args.state) as f:
        state = json.load(f)
    topic, group, produced = state["topic"], state["group"], state["produced"]
    saved = {int(p): o for p, o in state["committed"].items()}
    consumer = new_consumer(args.bootstrap, group)
    now = committed(consumer, topic)
    check(now == saved, f"after the restart, group {group} has committed offsets {now}; before it had {saved}")
    log(f"committed offsets survived the restart: {now}")
    produce(args.bootstrap, topic, produced, args.more)
    consume_exactly(consumer, topic, range(produced, produced + args.more))
    offsets = committed(consumer, topic)
    highs = high_watermarks(consumer, topic)
    consumer.close()
    check(offsets == highs, f"committed offsets {offsets} are not the high watermarks {highs}")
    state["produced"] = produced + args.more
    state["committed"] = {str(p): o for p, o in offsets.items()}
    with open(args.state, "w") as f:
        json.dump(state, f)
    ok(f"group {group} resumed from its committed offsets and read exactly the {args.more} new records")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["commit", "verify"])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--state", required=True, help="JSON file shared between the phases")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--more", type=int, default=500)
    args = parser.parse_args()
    log(f"confluent-kafka {ck.version()}, librdkafka {ck.libversion()[0]}")
    if args.phase == "commit":
        phase_commit(args)
    else:
        phase_verify(args)


if __name__ == "__main__":
    main()
