"""kafka-python 2.x consumer groups.

1. Creates a 3-partition topic and produces --records keyed records (KafkaProducer, acks=all).
2. Two KafkaConsumers (one thread each) subscribe in one group, commit synchronously after
   each poll (and on revocation); together they must process every record exactly once.
3. committed() must be at the end offsets for every partition.
4. After producing --more records, a third consumer in the same group must receive exactly
   the new records (it resumes from the committed offsets).

    python kafka_python_group.py --bootstrap 127.0.0.1:9092
"""

import argparse
import threading
import time

from common import Verifier, check, deadline, expired, fail, key_of, log, ok, require, unique, value_of

kafka = require("kafka")
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

PARTITIONS = 3


def produce(bootstrap, topic, first, count, keys):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             key_serializer=str.encode, value_serializer=str.encode)
    futures = [producer.send(topic, key=key_of(i, keys), value=value_of(i, keys)) for i in range(first, first + count)]
    producer.flush(timeout=60)
    for n, f in enumerate(futures):
        try:
            f.get(timeout=30)
        except Exception as e:  # noqa: BLE001
            fail(f"send of record {first + n} failed: {e!r}")
    producer.close(timeout=10)
    log(f"produced records {first}..{first + count - 1}")


def new_consumer(bootstrap, group, name):
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        key_deserializer=bytes.decode,
        value_deserializer=bytes.decode,
    )


class CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, name):
        self.name = name
        self.consumer = None

    def on_partitions_revoked(self, revoked):
        log(f"{self.name}: revoked {sorted(tp.partition for tp in revoked)}")
        if revoked and self.consumer is not None:
            self.consumer.commit()

    def on_partitions_assigned(self, assigned):
        log(f"{self.name}: assigned {sorted(tp.partition for tp in assigned)}")


def member(bootstrap, group, topic, name, rows, stop, errors):
    try:
        consumer = new_consumer(bootstrap, group, name)
        listener = CommitOnRevoke(name)
        listener.consumer = consumer
        consumer.subscribe([topic], listener=listener)
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=500, max_records=200)
            got = False
            for tp, records in batches.items():
                for r in records:
                    rows.append((name, r.topic, r.partition, r.offset, r.key, r.value))
                    got = True
            if got:
                consumer.commit()
        consumer.close()
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append(f"{name}: {e!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--more", type=int, default=500)
    parser.add_argument("--keys", type=int, default=40)
    args = parser.parse_args()
    log(f"kafka-python {kafka.__version__}")

    topic, group = unique("kp-group"), unique("kp-group")
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)], timeout_ms=30000)
    admin.close()
    produce(args.bootstrap, topic, 0, args.records, args.keys)

    rows, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=member, args=(args.bootstrap, group, topic, f"kp-member-{n}", rows, stop, errors),
                                daemon=True)
               for n in range(2)]
    for t in threads:
        t.start()
    until = deadline(120)
    while len({(r[2], r[3]) for r in rows}) < args.records:
        if errors:
            stop.set()
            fail(f"consumer thread failed: {errors}")
        if expired(until):
            stop.set()
            fail(f"the group processed {len(rows)} of {args.records} records within 120s")
        time.sleep(0.2)
    time.sleep(2)  # room for duplicates to show up
    stop.set()
    for t in threads:
        t.join(60)
    check(not errors, f"consumer thread failed: {errors}")
    verifier = Verifier(args.keys, expected=range(args.records))
    # Check each member's records in its own order, then that the union is exactly once.
    by_member = {}
    for name, *rest in rows:
        by_member.setdefault(name, []).append(rest)
    for name, member_rows in by_member.items():
        v = Verifier(args.keys, expected=range(args.records))
        for t, p, o, k, val in member_rows:
            v.add(t, p, o, k, val)
    seen = {}
    for name, t, p, o, k, val in rows:
        check((p, o) not in seen, f"{t}/{p}@{o} processed by {seen.get((p, o))} and again by {name}")
        seen[(p, o)] = name
    for t, p, o, k, val in sorted((r[1:] for r in rows), key=lambda r: (r[1], r[2])):
        verifier.add(t, p, o, k, val)
    verifier.finish(f"group {group}")
    shares = {name: len(r) for name, r in by_member.items()}
    log(f"two members processed all {args.records} records exactly once: {shares}")

    checker = new_consumer(args.bootstrap, group, "kp-checker")
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = checker.end_offsets(tps)
    for tp in tps:
        c = checker.committed(tp)
        check(c == ends[tp], f"committed offset of partition {tp.partition} is {c}, end offset {ends[tp]}")
    checker.close()

    produce(args.bootstrap, topic, args.records, args.more, args.keys)
    consumer = new_consumer(args.bootstrap, group, "kp-resume")
    consumer.subscribe([topic])
    v = Verifier(args.keys, expected=range(args.records, args.records + args.more))
    until = deadline(120)
    while v.count < args.more:
        if expired(until):
            fail(f"the resumed consumer got {v.count} of {args.more} new records within 120s")
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                v.add(r.topic, r.partition, r.offset, r.key, r.value)
    for tp, records in consumer.poll(timeout_ms=1000).items():
        for r in records:
            v.add(r.topic, r.partition, r.offset, r.key, r.value)
    v.finish("resumed consumer")
    check(v.count == args.more, f"the resumed consumer got {v.count} records, expected {args.more}")
    consumer.commit()
    consumer.close()
    ok(f"kafka-python {kafka.__version__} group: {args.records} records exactly once over 2 members "
       f"{shares}, committed offsets at the end, resumed with exactly the {args.more} new records")


if __name__ == "__main__":
    main()
