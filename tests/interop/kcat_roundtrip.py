"""kcat: metadata, keyed produce with every codec, consume back exactly.

For each codec (none, gzip, snappy, lz4, zstd) kcat -P produces --records
"key:value" lines (-K:) to a new, auto-created topic; kcat -C -o beginning -e
reads them back and every record must come back exactly once with its key and
value, in order per partition and per key. Then kcat -L -J must list the broker
(at the bootstrap address) and every topic with a leader for each partition.

Debian's kcat links librdkafka 2.0.2, which compresses only when the broker
advertises Produce v0 (fixed in librdkafka 2.11.1), so the compressed runs check
that the broker keeps advertising it.

kcat is run without a shell (subprocess with an argument list).

    python kcat_roundtrip.py --bootstrap 127.0.0.1:9092 --kcat /usr/bin/kcat
"""

import argparse
import json
import subprocess

from common import Verifier, check, fail, key_of, log, ok, unique, value_of

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(args, kcat_bin, bootstrap, stdin=None, timeout=60):
    cmd = [kcat_bin, "-b", bootstrap] + args
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fail(f"{' '.join(cmd)} did not finish within {timeout}s; stderr: {e.stderr}")
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}")
    return proc


def produce_and_consume(kcat_bin, bootstrap, codec, records, keys):
    topic = unique(f"kcat-{codec}")
    lines = "".join(f"{key_of(i, keys)}:{value_of(i, keys)}\n" for i in range(records))
    proc = kcat(["-P", "-t", topic, "-K:", "-X", f"compression.codec={codec}", "-X", "acks=all"],
                kcat_bin, bootstrap, stdin=lines)
    check("Delivery failed" not in proc.stderr, f"kcat -P reported failed deliveries: {proc.stderr[-2000:]}")

    proc = kcat(["-C", "-t", topic, "-o", "beginning", "-e", "-f", "%t\t%p\t%o\t%k\t%s\n"], kcat_bin, bootstrap)
    verifier = Verifier(keys, expected=range(records))
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        check(len(fields) == 5, f"unexpected kcat -C line {line!r}")
        t, p, o, k, v = fields
        check(t == topic, f"kcat -C printed a record of topic {t!r}, expected {topic!r}")
        verifier.add(t, int(p), int(o), k, v)
    verifier.finish(f"{topic} ({codec})")
    check(verifier.count == records, f"{topic}: kcat -C returned {verifier.count} records, produced {records}")
    partitions = sorted({p for (_, p) in verifier.last_offset})
    log(f"{codec}: {records} keyed records produced by kcat -P and consumed back by kcat -C "
        f"(partitions used: {partitions})")
    return topic


def check_metadata(kcat_bin, bootstrap, topics):
    proc = kcat(["-L", "-J"], kcat_bin, bootstrap)
    try:
        md = json.loads(proc.stdout)
    except ValueError as e:
        fail(f"kcat -L -J printed invalid JSON ({e}): {proc.stdout[:2000]}")
    brokers = md.get("brokers", [])
    check(len(brokers) == 1, f"kcat -L: expected 1 broker, got {brokers}")
    broker = brokers[0]
    check(broker.get("name") == bootstrap, f"kcat -L: broker advertised as {broker.get('name')!r}, expected {bootstrap!r}")
    listed = {t["topic"]: t for t in md.get("topics", [])}
    for topic in topics:
        check(topic in listed, f"kcat -L does not list {topic}; it lists {sorted(listed)}")
        t = listed[topic]
        check("error" not in t, f"kcat -L: {topic} has error {t.get('error')}")
        check(len(t["partitions"]) >= 1, f"kcat -L: {topic} has no partitions")
        for p in t["partitions"]:
            check(p.get("leader") == broker["id"], f"kcat -L: {topic}/{p.get('partition')} leader {p.get('leader')}")
            check("error" not in p, f"kcat -L: {topic}/{p.get('partition')} error {p.get('error')}")
    # The plain text listing too, as people read it.
    text = kcat(["-L"], kcat_bin, bootstrap).stdout
    check(" 1 brokers:" in text and f"at {bootstrap}" in text, f"kcat -L text listing unexpected:\n{text[:2000]}")
    log(f"kcat -L lists broker {broker['id']} at {broker['name']} and all {len(topics)} topics")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--kcat", required=True, help="path to the kcat binary")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--keys", type=int, default=7)
    args = parser.parse_args()

    version = subprocess.run([args.kcat, "-V"], capture_output=True, text=True, timeout=10).stdout
    log(next((line for line in version.splitlines() if line.startswith("Version")), "kcat version unknown"))
    topics = [produce_and_consume(args.kcat, args.bootstrap, codec, args.records, args.keys) for codec in CODECS]
    check_metadata(args.kcat, args.bootstrap, topics)
    ok(f"kcat: -L, -P -K: and -C -e round trips with codecs {', '.join(CODECS)}")


if __name__ == "__main__":
    main()
