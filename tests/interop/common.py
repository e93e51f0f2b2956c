"""Helpers shared by the interop scripts.

The scripts run with the virtualenv python that `cargo xtask install` creates
(target/interop/venv), started by the Rust harness in crates/cli/tests/interop*.rs
with the broker's bootstrap address. Each script prints progress to stderr, ends
with a line starting with "OK" on stdout when every check passed, and exits 1
with a "FAIL: ..." message otherwise.

Records are deterministic so that a consumer can check each one on its own:
record number i has key key_of(i) and value value_of(i), and the value carries
i, the key and the key's sequence number (i // keys), so the consumer can check
content, per-key order and duplicates without remembering what was sent.
"""

import sys
import time
import uuid

_START = time.monotonic()


def log(message):
    """Progress message with the time since the script started (stderr)."""
    print(f"[{time.monotonic() - _START:7.2f}s] {message}", file=sys.stderr, flush=True)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def ok(message):
    print(f"OK: {message}", flush=True)


def require(module):
    """Imports a client module, failing with install instructions when it is missing."""
    try:
        return __import__(module)
    except ImportError as e:
        fail(f"cannot import {module} ({e}): run `cargo xtask install` to create the virtualenv")


def unique(prefix):
    """A topic or group name unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def deadline(seconds):
    return time.monotonic() + seconds


def expired(at):
    return time.monotonic() > at


# ---------------------------------------------------------------------------------------------
# Deterministic records


def key_of(i, keys):
    return f"key-{i % keys:05d}"


def value_of(i, keys):
    key = key_of(i, keys)
    # 64 characters that change with i: compressible, but not trivially.
    filler = f"{(i * 2654435761) & 0xFFFFFFFF:08x}" * 8
    return f"{i}|{key}|{i // keys}|{filler}"


def parse_value(value, keys):
    """Returns (i, key, seq) of a value made by value_of, or fails."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    parts = value.split("|")
    try:
        i = int(parts[0])
    except (ValueError, IndexError):
        fail(f"value {value[:80]!r} is not one of ours")
    check(value == value_of(i, keys), f"record {i}: value corrupted: {value[:120]!r}")
    return i, parts[1], int(parts[2])


class Verifier:
    """Checks consumed records against what was produced.

    add() checks each record: value intact, key matches the value, not seen
    before (unless duplicates are allowed), offsets strictly increasing per
    partition, per-key sequence increasing, each key in one partition, and (when
    delivery reports were given) that the record sits at the partition and
    offset its delivery report named.
    """

    def __init__(self, keys, expected=None, delivered=None, allow_duplicates=False):
        self.keys = keys
        self.expected = expected  # None or the set/range of record numbers that must appear
        self.delivered = delivered or {}  # i -> (partition, offset)
        self.allow_duplicates = allow_duplicates
        self.seen = {}  # i -> count
        self.last_offset = {}  # (topic, partition) -> offset
        self.last_seq = {}  # key -> seq
        self.key_partition = {}  # key -> (topic, partition)
        self.count = 0
        self.duplicates = 0

    def add(self, topic, partition, offset, key, value):
        i, value_key, seq = parse_value(value, self.keys)
        if isinstance(key, (bytes, bytearray)):
            key = key.decode("utf-8", "replace")
        check(key == value_key, f"record {i} at {topic}/{partition}@{offset}: key {key!r} != {value_key!r}")
        tp = (topic, partition)
        last = self.last_offset.get(tp, -1)
        check(offset > last, f"{topic}/{partition}: offset {offset} after {last} (offsets must increase)")
        self.last_offset[tp] = offset
        placed = self.key_partition.setdefault(key, tp)
        check(placed == tp, f"key {key} found in partitions {placed[1]} and {partition}")
        prev_seq = self.last_seq.get(key, -1)
        if seq <= prev_seq:
            check(self.allow_duplicates and i in self.seen,
                  f"key {key}: sequence {seq} (record {i}) at {topic}/{partition}@{offset} after sequence {prev_seq}")
        else:
            self.last_seq[key] = seq
        if i in self.seen:
            check(self.allow_duplicates, f"record {i} consumed twice (again at {topic}/{partition}@{offset})")
            self.duplicates += 1
        self.seen[i] = self.seen.get(i, 0) + 1
        if self.expected is not None:
            check(i in self.expected, f"record {i} at {topic}/{partition}@{offset} is not one of the records expected here")
        where = self.delivered.get(i)
        if where is not None:
            check(where == (partition, offset),
                  f"record {i}: delivery report said partition {where[0]} offset {where[1]}, "
                  f"found at partition {partition} offset {offset}")
        self.count += 1

    def missing(self):
        if self.expected is None:
            return []
        return [i for i in self.expected if i not in self.seen]

    def finish(self, what):
        missing = self.missing()
        check(not missing, f"{what}: {len(missing)} records never consumed, e.g. {missing[:10]}")
        if not self.allow_duplicates:
            check(self.duplicates == 0, f"{what}: {self.duplicates} duplicates")
