"""confluent-kafka consumer groups: exactly-once processing across members, takeover after kill -9.

Modes:
  exactly-once  Produces --records keyed records to a --partitions topic, then runs
                --members consumer processes in group A (assignor --assignor) and,
                at the same time, one consumer in group B. Every member commits its
                processed offsets synchronously after each batch. Every record must
                be processed exactly once in group A and exactly once in group B,
                at the partition/offset its delivery report named, and the groups'
                committed offsets must end at the high watermarks.
  kill-member   Same group A with slower members; once every member has partitions
                and a quarter of the records are processed, one member is killed
                with SIGKILL. The others must take over its partitions within the
                session timeout (+10 s) and process everything; a record may be
                processed twice only if the killed member processed it at or after
                its last successful commit for that partition.
  member        One consumer process (used by the two modes above): appends lines
                to --out: "A <time> <partitions>" / "R ..." / "L ..." on
                assignment/revocation/loss, "M <partition> <offset> <record>" per
                processed record, "C <partition> <offset>" per committed offset,
                "E <text>" on errors; runs until --stop-file exists.

    python confluent_group.py exactly-once --bootstrap 127.0.0.1:9092 --assignor cooperative-sticky
    python confluent_group.py kill-member --bootstrap 127.0.0.1:9092
"""

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import check, deadline, expired, fail, key_of, log, ok, parse_value, require, unique, value_of

ck = require("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SESSION_TIMEOUT_MS = 6000


# ---------------------------------------------------------------------------------------------
# member process


def run_member(args):
    out = open(args.out, "a", buffering=1)

    def write(line):
        out.write(line + "\n")

    def parts(partitions):
        return ",".join(str(p.partition) for p in partitions) or "-"

    # Next offset to commit per partition (everything below it was processed) and what the
    # broker has acknowledged. A commit can fail during a rebalance (REBALANCE_IN_PROGRESS or
    # ILLEGAL_GENERATION, exactly as with Kafka); what it covered is committed again when the
    # partition is revoked, as Kafka's documentation recommends (commitSync in onPartitionsRevoked).
    processed_upto = {}
    committed_upto = {}

    def commit(consumer, partitions):
        pending = [TopicPartition(args.topic, p, processed_upto[p]) for p in partitions
                   if processed_upto.get(p, -1) > committed_upto.get(p, -1)]
        if not pending:
            return
        try:
            result = consumer.commit(offsets=pending, asynchronous=False)
            for tp in result:
                if tp.error:
                    write(f"E commit {tp.partition} {tp.error}")
                else:
                    committed_upto[tp.partition] = max(committed_upto.get(tp.partition, -1), tp.offset)
                    write(f"C {tp.partition} {tp.offset}")
        except KafkaException as e:
            write(f"E commit {e}")

    def on_revoke(c, ps):
        write(f"R {time.time():.3f} {parts(ps)}")
        commit(c, [p.partition for p in ps])
        for p in ps:
            processed_upto.pop(p.partition, None)
            committed_upto.pop(p.partition, None)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": f"member-{args.name}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 1000,
        "partition.assignment.strategy": args.assignor,
        "error_cb": lambda err: write(f"E error_cb {err}"),
    })
    consumer.subscribe(
        [args.topic],
        on_assign=lambda c, ps: write(f"A {time.time():.3f} {parts(ps)}"),
        on_revoke=on_revoke,
        on_lost=lambda c, ps: write(f"L {time.time():.3f} {parts(ps)}"),
    )
    parent = os.getppid()
    while not os.path.exists(args.stop_file):
        if os.getppid() != parent:
            write("E orchestrator died, stopping")
            break
        msgs = consumer.consume(num_messages=args.batch, timeout=0.5)
        processed = {}
        lines = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    lines.append(f"E consume {err}")
                continue
            i, _, _ = parse_value(m.value(), args.keys)
            lines.append(f"M {m.partition()} {m.offset()} {i}")
            processed[m.partition()] = m.offset() + 1
        if lines:
            out.write("\n".join(lines) + "\n")
        if not processed:
            continue
        # "Processing" is writing the M lines; then commit exactly what was processed.
        processed_upto.update(processed)
        commit(consumer, list(processed))
        if args.delay:
            time.sleep(args.delay)
    consumer.close()
    write("X closed")
    ok(f"member {args.name} closed")


# ---------------------------------------------------------------------------------------------
# orchestration


def create_and_produce(bootstrap, topic, partitions, records, keys):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                            operation_timeout=30)[topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001
        fail(f"create_topics({topic}) failed: {e}")
    delivered = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered[int(msg.value().split(b"|", 1)[0])] = (msg.partition(), msg.offset())

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 10,
        "queue.buffering.max.messages": max(2 * records, 100000),
    })
    for i in range(records):
        producer.produce(topic, key=key_of(i, keys), value=value_of(i, keys), on_delivery=on_delivery)
        if i % 1000 == 0:
            producer.poll(0)
    check(producer.flush(60) == 0, "records left undelivered after flush(60)")
    check(not errors, f"{len(errors)} delivery errors, first {errors[:3]}")
    check(len(delivered) == records, f"{len(delivered)} delivery reports for {records} records")
    log(f"produced {records} records to {topic} ({partitions} partitions)")
    return delivered


RUNNING = []  # member processes, killed at exit so that a failing run leaves none behind


@atexit.register
def _kill_members():
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()


class Member:
    def __init__(self, args, workdir, group, name, assignor, delay, batch):
        self.name = name
        self.group = group
        self.out = os.path.join(workdir, f"{group}-{name}.out")
        self.stop_file = os.path.join(workdir, f"{group}-{name}.stop")
        self.log_path = os.path.join(workdir, f"{group}-{name}.log")
        self.log_file = open(self.log_path, "w")
        open(self.out, "w").close()
        cmd = [sys.executable, os.path.abspath(__file__), "member", "--bootstrap", args.bootstrap,
               "--topic", args.topic, "--group", group, "--name", name, "--out", self.out,
               "--stop-file", self.stop_file, "--assignor", assignor, "--keys", str(args.keys),
               "--delay", str(delay), "--batch", str(batch)]
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        RUNNING.append(self.proc)
        self.killed = False

    def lines(self):
        with open(self.out) as f:
            return [line.rstrip("\n") for line in f if line.endswith("\n")]

    def owned(self):
        """Partitions currently assigned, from the A/R/L lines."""
        owned = set()
        for line in self.lines():
            kind, _, rest = line.partition(" ")
            if kind in ("A", "R", "L"):
                ps = rest.split(" ", 1)[1]
                ps = set() if ps == "-" else {int(p) for p in ps.split(",")}
                owned = owned | ps if kind == "A" else owned - ps
        return owned

    def output(self):
        self.log_file.flush()
        with open(self.log_path) as f:
            log_text = f.read()[-3000:]
        errors = [line for line in self.lines() if line.startswith("E ")][-20:]
        return f"member {self.group}/{self.name} (exit {self.proc.poll()}): log tail:\n{log_text}\nerror lines: {errors}"

    def check_alive(self):
        if not self.killed and self.proc.poll() is not None:
            fail(f"member {self.group}/{self.name} exited early\n{self.output()}")

    def stop(self):
        open(self.stop_file, "w").close()

    def wait(self, seconds):
        try:
            code = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail(f"member {self.group}/{self.name} did not stop within {seconds}s\n{self.output()}")
        check(code == 0, f"member {self.group}/{self.name} exited {code}\n{self.output()}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.killed = True


def processed(members):
    """[(member, partition, offset, record)] from the M lines of all members."""
    rows = []
    for m in members:
        for line in m.lines():
            if line.startswith("M "):
                _, p, o, i = line.split(" ")
                rows.append((m, int(p), int(o), int(i)))
    return rows


def wait_processed(members, records, seconds, what):
    until = deadline(seconds)
    while True:
        for m in members:
            m.check_alive()
        distinct = {i for (_, _, _, i) in processed(members)}
        if len(distinct) >= records:
            return
        if expired(until):
            details = "\n".join(m.output() for m in members)
            fail(f"{what}: {len(distinct)} of {records} records processed within {seconds}s\n{details}")
        time.sleep(0.2)


def check_processing(members, delivered, records, allowed_duplicate=None):
    """Every record processed; duplicates only where allowed_duplicate(partition, offset, processors) says so."""
    by_record = {}
    for m, p, o, i in processed(members):
        check(delivered.get(i) == (p, o),
              f"record {i} processed at {p}@{o}, but its delivery report said {delivered.get(i)}")
        by_record.setdefault(i, []).append(m)
    missing = [i for i in range(records) if i not in by_record]
    check(not missing, f"{len(missing)} records never processed, e.g. {missing[:10]}")
    duplicates = {i: ms for i, ms in by_record.items() if len(ms) > 1}
    bad = [(i, [m.name for m in ms]) for i, ms in duplicates.items()
           if allowed_duplicate is None or not allowed_duplicate(delivered[i][0], delivered[i][1], ms)]
    check(not bad, f"{len(bad)} records processed more than once (not allowed), e.g. {sorted(bad)[:10]}")
    # Within one member, a partition's offsets only move forward (a re-assigned partition resumes
    # at the committed offset, which is past everything this member processed).
    for m in members:
        last = {}
        for line in m.lines():
            if line.startswith("M "):
                _, p, o, _ = line.split(" ")
                p, o = int(p), int(o)
                check(o > last.get(p, -1), f"member {m.name}: partition {p} offset {o} after {last.get(p)}")
                last[p] = o
    return len(duplicates)


def check_committed(bootstrap, group, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    committed = consumer.committed(tps, timeout=30)
    for tp in committed:
        high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=30, cached=False)[1]
        check(tp.error is None, f"group {group}: committed() error for partition {tp.partition}: {tp.error}")
        check(tp.offset == high, f"group {group}: committed offset of partition {tp.partition} is {tp.offset}, "
                                 f"high watermark {high}")
    consumer.close()


def exactly_once(args):
    delivered = create_and_produce(args.bootstrap, args.topic, args.partitions, args.records, args.keys)
    workdir = tempfile.mkdtemp(prefix="fjord-group-", dir=args.workdir)
    log(f"member files in {workdir}")
    group_a, group_b = unique("group-a"), unique("group-b")
    members = [Member(args, workdir, group_a, f"a{n}", args.assignor, 0.0, 500) for n in range(args.members)]
    others = [Member(args, workdir, group_b, "b0", args.assignor, 0.0, 500)]
    log(f"started {args.members} members in {group_a} ({args.assignor}) and 1 in {group_b}")
    wait_processed(members, args.records, 180, group_a)
    wait_processed(others, args.records, 180, group_b)
    time.sleep(2)  # room for late duplicates to show up
    for m in members + others:
        m.stop()
    for m in members + others:
        m.wait(60)
    check_processing(members, delivered, args.records)
    check_processing(others, delivered, args.records)
    shares = {m.name: sum(1 for line in m.lines() if line.startswith("M ")) for m in members}
    check_committed(args.bootstrap, group_a, args.topic, args.partitions)
    check_committed(args.bootstrap, group_b, args.topic, args.partitions)
    shutil.rmtree(workdir, ignore_errors=True)
    ok(f"{args.records} records processed exactly once by {args.members} members of {group_a} "
       f"({args.assignor}; shares {shares}) and exactly once by {group_b}; committed offsets at the end")


def kill_member(args):
    delivered = create_and_produce(args.bootstrap, args.topic, args.partitions, args.records, args.keys)
    workdir = tempfile.mkdtemp(prefix="fjord-group-", dir=args.workdir)
    log(f"member files in {workdir}")
    group = unique("group-kill")
    # Slow members (batches of 50, 20 ms pause) so that the kill lands mid-way.
    members = [Member(args, workdir, group, f"m{n}", args.assignor, 0.02, 50) for n in range(args.members)]
    victim = members[0]
    until = deadline(120)
    while True:
        for m in members:
            m.check_alive()
        done = len({i for (_, _, _, i) in processed(members)})
        if all(m.owned() for m in members) and done >= args.records // 4:
            break
        if expired(until):
            fail(f"the group never had every member assigned with {args.records // 4} records processed "
                 f"({done} processed)\n" + "\n".join(m.output() for m in members))
        time.sleep(0.1)
    victim_parts = victim.owned()
    kill_time = time.time()
    victim.kill()
    log(f"killed {victim.name} (partitions {sorted(victim_parts)}) after {done} records")
    last_commit = {}
    for line in victim.lines():
        if line.startswith("C "):
            _, p, o = line.split(" ")
            last_commit[int(p)] = int(o)

    survivors = members[1:]
    wait_processed(members, args.records, SESSION_TIMEOUT_MS / 1000 + 150, f"{group} after the kill")
    time.sleep(2)
    for m in survivors:
        m.stop()
    for m in survivors:
        m.wait(60)

    def allowed(partition, offset, processors):
        # Only records the victim processed after its last commit may be processed again.
        return (len(processors) == 2 and victim in processors and partition in victim_parts
                and offset >= last_commit.get(partition, 0))

    duplicates = check_processing(members, delivered, args.records, allowed)

    takeover = None
    for m in survivors:
        for line in m.lines():
            if line.startswith("A "):
                _, t, ps = line.split(" ")
                t = float(t)
                if t >= kill_time and ps != "-" and victim_parts & {int(p) for p in ps.split(",")}:
                    takeover = t if takeover is None else min(takeover, t)
    check(takeover is not None, f"no surviving member was assigned the killed member's partitions {victim_parts}")
    limit = SESSION_TIMEOUT_MS / 1000 + 10
    check(takeover - kill_time <= limit,
          f"takeover took {takeover - kill_time:.1f}s, more than the session timeout + 10s ({limit}s)")
    check_committed(args.bootstrap, group, args.topic, args.partitions)
    shutil.rmtree(workdir, ignore_errors=True)
    ok(f"member killed with SIGKILL; its partitions {sorted(victim_parts)} were taken over after "
       f"{takeover - kill_time:.1f}s; all {args.records} records processed, {duplicates} processed twice "
       f"(all after the killed member's last commit)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["exactly-once", "kill-member", "member"])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--assignor", default="range,roundrobin",
                        help="partition.assignment.strategy (e.g. cooperative-sticky)")
    parser.add_argument("--records", type=int, default=60000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--workdir", help="where member files go (default: the system temp dir)")
    # member mode
    parser.add_argument("--topic")
    parser.add_argument("--group")
    parser.add_argument("--name")
    parser.add_argument("--out")
    parser.add_argument("--stop-file")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    if args.mode == "member":
        run_member(args)
        return
    log(f"confluent-kafka {ck.version()}, librdkafka {ck.libversion()[0]}")
    args.topic = unique("groups")
    if args.mode == "exactly-once":
        exactly_once(args)
    else:
        kill_member(args)


if __name__ == "__main__":
    main()
