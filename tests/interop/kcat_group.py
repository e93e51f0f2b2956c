"""kcat balanced consumer (-G): group consumption and committed offsets.

kcat -P produces --records keyed lines to a new auto-created topic; kcat -G
<group> -e (the high-level KafkaConsumer, which commits on close) must read every
record exactly once. After --more new lines, a second kcat -G run in the same
group must read exactly the new ones.

    python kcat_group.py --bootstrap 127.0.0.1:9092 --kcat /usr/bin/kcat
"""

import argparse

from common import Verifier, check, key_of, log, ok, unique, value_of
from kcat_roundtrip import kcat


def produce(kcat_bin, bootstrap, topic, first, count, keys):
    lines = "".join(f"{key_of(i, keys)}:{value_of(i, keys)}\n" for i in range(first, first + count))
    proc = kcat(["-P", "-t", topic, "-K:", "-X", "acks=all"], kcat_bin, bootstrap, stdin=lines)
    check("Delivery failed" not in proc.stderr, f"kcat -P reported failed deliveries: {proc.stderr[-2000:]}")


def group_consume(kcat_bin, bootstrap, group, topic, expected, keys):
    proc = kcat(["-G", group, "-X", "auto.offset.reset=earliest", "-e", "-f", "%t\t%p\t%o\t%k\t%s\n", topic],
                kcat_bin, bootstrap, timeout=120)
    verifier = Verifier(keys, expected=expected)
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        check(len(fields) == 5, f"unexpected kcat -G line {line!r}")
        t, p, o, k, v = fields
        verifier.add(t, int(p), int(o), k, v)
    verifier.finish(f"kcat -G {group}")
    check(verifier.count == len(expected), f"kcat -G {group} read {verifier.count} records, expected {len(expected)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="broker address, host:port")
    parser.add_argument("--kcat", required=True, help="path to the kcat binary")
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--more", type=int, default=100)
    parser.add_argument("--keys", type=int, default=7)
    args = parser.parse_args()

    topic, group = unique("kcat-group"), unique("kcat-group")
    produce(args.kcat, args.bootstrap, topic, 0, args.records, args.keys)
    group_consume(args.kcat, args.bootstrap, group, topic, range(args.records), args.keys)
    log(f"kcat -G {group} read all {args.records} records")
    produce(args.kcat, args.bootstrap, topic, args.records, args.more, args.keys)
    group_consume(args.kcat, args.bootstrap, group, topic, range(args.records, args.records + args.more), args.keys)
    log(f"kcat -G {group} resumed from its committed offsets and read exactly the {args.more} new records")
    ok(f"kcat -G: {args.records} records, then exactly the {args.more} new ones after the committed offsets")


if __name__ == "__main__":
    main()
