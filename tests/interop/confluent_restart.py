"""confluent-kafka producer through a broker restart: nothing acknowledged is lost.

Produces keyed records with acks=all and enable.idempotence=true at about --rate
records/s, printing "PROGRESS acked=<n> failed=<n> produced=<n>" lines on stdout
several times a second, until --stop-file exists. Meanwhile the Rust harness
restarts the broker (SIGTERM or kill -9) on the same port and data directory;
the producer retries through the outage (message.timeout.ms is 60 s).

After the stop file appears, the producer is flushed, and every partition is
read from the beginning with assign(). Checks:
* every record whose delivery report succeeded is in the log, at exactly the
  partition and offset of its report (nothing acknowledged lost);
* offsets increase and per-key sequences increase in every partition (order kept);
* no record appears twice (idempotence survives the restart);
* records whose delivery failed are reported but allowed to be missing.

    python confluent_restart.py --bootstrap 127.0.0.1:9092 --stop-file /tmp/x/stop
"""

import argparse
import os
import time

from common import Verifier, check, deadline, expired, fail, key_of, log, ok, require, unique, value_of

ck = require("confluent_kafka")
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--stop-file", required=True, help="stop producing once this file exists")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--rate", type=int, default=2000, help="records per second")
    parser.add_argument("--max-seconds", type=int, default=300, help="give up if never told to stop")
    args = parser.parse_args()
    log(f"confluent-kafka {ck.version()}, librdkafka {ck.libversion()[0]}")

    topic = unique("restart")
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    try:
        admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)],
                            operation_timeout=30)[topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001
        fail(f"create_topics({topic}) failed: {e}")

    delivered = {}  # i -> (partition, offset)
    failed = {}  # i -> error
    fatal = []

    def on_delivery(err, msg):
        i = int(msg.value().split(b"|", 1)[0])
        if err is not None:
            failed[i] = err
        else:
            delivered[i] = (msg.partition(), msg.offset())

    def on_error(err):
        # Transport errors are expected while the broker is down.
        log(f"producer error callback: {err}")
        if err.fatal():
            fatal.append(err)

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 1000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "error_cb": on_error,
    })

    produced = 0
    started = time.monotonic()
    next_report = started
    give_up = deadline(args.max_seconds)
    per_tick = max(1, args.rate // 50)
    while not os.path.exists(args.stop_file):
        if expired(give_up):
            fail(f"never told to stop within {args.max_seconds}s")
        if fatal:
            fail(f"producer fatal error: {fatal[0]}")
        tick = time.monotonic()
        for _ in range(per_tick):
            try:
                producer.produce(topic, key=key_of(produced, args.keys), value=value_of(produced, args.keys),
                                 on_delivery=on_delivery)
                produced += 1
            except BufferError:
                break
        producer.poll(0)
        now = time.monotonic()
        if now >= next_report:
            print(f"PROGRESS acked={len(delivered)} failed={len(failed)} produced={produced}", flush=True)
            next_report = now + 0.2
        # Pace to about --rate records per second, serving delivery reports while waiting.
        # (poll returns early whenever it served a callback, hence the loop.)
        while (left := tick + per_tick / args.rate - time.monotonic()) > 0:
            producer.poll(left)

    log(f"stop file seen after {time.monotonic() - started:.1f}s: flushing {len(producer)} queued records")
    remaining = producer.flush(90)
    print(f"PROGRESS acked={len(delivered)} failed={len(failed)} produced={produced}", flush=True)
    check(not fatal, f"producer fatal error: {fatal and fatal[0]}")
    check(remaining == 0, f"{remaining} records neither delivered nor failed after flush(90)")
    if failed:
        sample = sorted(failed.items())[:5]
        log(f"WARNING: {len(failed)} records failed delivery (allowed to be missing), e.g. {sample}")
    log(f"produced {produced}: {len(delivered)} acknowledged, {len(failed)} failed")

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": unique("interop-assign"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "error_cb": lambda err: log(f"consumer error callback: {err}"),
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    verifier = Verifier(args.keys, expected=None, delivered=delivered)
    ends = {}
    for p in range(args.partitions):
        ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1]
    total = sum(ends.values())
    check(total >= len(delivered), f"the log holds {total} records but {len(delivered)} were acknowledged")
    at_eof = set()
    until = deadline(120)
    while not (verifier.count >= total and len(at_eof) == args.partitions):
        if expired(until):
            fail(f"read {verifier.count} of {total} records within 120s")
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                    continue
                fail(f"consume error: {err}")
            at_eof.discard(msg.partition())
            verifier.add(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())
    consumer.close()

    lost = [i for i in delivered if i not in verifier.seen]
    check(not lost, f"{len(lost)} acknowledged records are missing after the restart, e.g. {sorted(lost)[:10]} "
                    f"(delivery reports: {[delivered[i] for i in sorted(lost)[:5]]})")
    unacked_present = sum(1 for i in failed if i in verifier.seen)
    ok(f"{len(delivered)} acknowledged records all read back in order, no duplicates "
       f"({len(failed)} failed deliveries, {unacked_present} of them present anyway)")


if __name__ == "__main__":
    main()
