//! Crash consistency: damage segment and index files the way a crash (or a bad disk) would,
//! reopen, and check that exactly the batches wholly before the damage remain, that indexes
//! are rebuilt, and that appends continue at the right offset.

// Test helpers outside #[test] functions panic on purpose.
#![allow(clippy::unwrap_used)]

use fjord_common::{ManualClock, TopicPartition};
use fjord_protocol::batch::BatchIter;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{BatchBuilder, Record};
use fjord_storage::testing::FaultyIo;
use fjord_storage::{segment_file_name, Log, LogConfig, LogOpenOptions};
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

/// One batch as found on disk.
#[derive(Debug, Clone, PartialEq)]
struct OnDisk {
    segment: i64,
    position: usize,
    base: i64,
    next: i64,
    bytes: Vec<u8>,
}

fn config(segment_bytes: usize) -> LogConfig {
    LogConfig::default()
        .with_overrides([
            ("segment.bytes", segment_bytes.to_string().as_str()),
            ("index.interval.bytes", "256"),
        ])
        .unwrap()
}

fn batch(records: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, ts);
    for i in 0..records {
        b.push(
            Record::new(
                Some(vec![b'k', i as u8]),
                Some(vec![(i * 7) as u8; value_len]),
            )
            .with_timestamp(ts + i as i64),
        );
    }
    b.build().unwrap().to_vec()
}

fn open(dir: &Path, config: &LogConfig, opts: LogOpenOptions) -> Log {
    let clock = Arc::new(ManualClock::new(T0));
    Log::open(
        dir,
        TopicPartition::new("c", 0),
        config.clone(),
        opts,
        clock,
    )
    .unwrap()
}

fn unclean(recovery_point: i64) -> LogOpenOptions {
    LogOpenOptions {
        recovery_point,
        clean_shutdown: false,
        ..Default::default()
    }
}

fn clean() -> LogOpenOptions {
    LogOpenOptions {
        clean_shutdown: true,
        ..Default::default()
    }
}

/// Writes batches of the given shapes, then "crashes" (drops the log without closing it).
fn write_and_crash(dir: &Path, config: &LogConfig, shapes: &[(usize, usize)]) -> Vec<OnDisk> {
    let mut log = open(dir, config, clean());
    for (i, &(records, value_len)) in shapes.iter().enumerate() {
        log.append_as_leader(&batch(records, value_len, T0 - 10_000 + i as i64 * 10), 0)
            .unwrap();
    }
    drop(log);
    on_disk(dir)
}

fn segment_files(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let base = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (base, p)
        })
        .collect();
    v.sort();
    v
}

fn on_disk(dir: &Path) -> Vec<OnDisk> {
    let mut out = Vec::new();
    for (segment, path) in segment_files(dir) {
        let bytes = fs::read(&path).unwrap();
        for item in BatchIter::new(&bytes) {
            let (h, range) = item.unwrap();
            out.push(OnDisk {
                segment,
                position: range.start,
                base: h.base_offset,
                next: h.next_offset(),
                bytes: bytes[range].to_vec(),
            });
        }
    }
    out
}

fn read_everything(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let bytes = r.slice.unwrap().read_bytes().unwrap();
        for item in BatchIter::new(&bytes) {
            let (h, range) = item.unwrap();
            out.push((h.base_offset, bytes[range].to_vec()));
        }
        offset = r.next_offset;
    }
    out
}

/// Checks the reopened log holds exactly `expected`, that every offset is readable through
/// the indexes, and that appends continue at the right offset.
fn check_survivors(log: &mut Log, expected: &[OnDisk], empty_end: i64) {
    let got = read_everything(log);
    let want: Vec<(i64, Vec<u8>)> = expected.iter().map(|b| (b.base, b.bytes.clone())).collect();
    assert_eq!(got.len(), want.len(), "batch count");
    assert!(got == want, "surviving batches differ");
    let end = expected.last().map_or(empty_end, |b| b.next);
    assert_eq!(log.log_end_offset(), end);
    for b in expected {
        for o in [b.base, b.next - 1] {
            let r = log.read(o, 1, i64::MAX, true).unwrap();
            assert_eq!(r.first_offset, b.base, "index lookup of offset {o}");
        }
    }
    let info = log.append_as_leader(&batch(2, 10, T0), 0).unwrap();
    assert_eq!(info.first_offset, end);
    assert_eq!(read_everything(log).len(), expected.len() + 1);
}

/// Byte positions inside a batch whose damage recovery must detect: the batch length, the
/// magic byte and everything the CRC covers. (Base offset and partition leader epoch are not
/// covered by the CRC, in Kafka's format as in ours.)
fn detectable(offset_in_batch: usize) -> bool {
    (8..12).contains(&offset_in_batch) || offset_in_batch >= 16
}

fn shapes() -> impl Strategy<Value = Vec<(usize, usize)>> {
    proptest::collection::vec((1usize..12, 0usize..200), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Cut the last segment anywhere, optionally flip a byte before the cut.
    #[test]
    fn torn_and_damaged_tail(
        shapes in shapes(),
        segment_bytes in 2600usize..6000,
        cut in 0.0f64..1.0,
        flip in proptest::option::of((0.0f64..1.0, 1u8..=255)),
        flushed in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c-0");
        let config = config(segment_bytes);
        let batches = write_and_crash(&dir, &config, &shapes);
        let (last_base, last_path) = segment_files(&dir).pop().unwrap();
        let mut bytes = fs::read(&last_path).unwrap();
        let cut = (bytes.len() as f64 * cut) as usize;
        bytes.truncate(cut);
        let mut damage = cut;
        if let Some((at, mask)) = flip {
            if cut > 0 {
                let q = ((cut - 1) as f64 * at) as usize;
                let holder = batches.iter().find(|b| b.segment == last_base && b.position <= q && q < b.position + b.bytes.len());
                if let Some(h) = holder {
                    if detectable(q - h.position) {
                        bytes[q] ^= mask;
                        damage = damage.min(h.position);
                    }
                }
            }
        }
        fs::write(&last_path, &bytes).unwrap();
        let expected: Vec<OnDisk> = batches
            .iter()
            .filter(|b| b.segment < last_base || b.position + b.bytes.len() <= damage)
            .cloned()
            .collect();
        // The recovery point is either 0 (never flushed) or the last segment's base (older
        // segments were flushed): recovery must scan the last segment either way.
        let recovery_point = if flushed { last_base } else { 0 };
        let mut log = open(&dir, &config, unclean(recovery_point));
        check_survivors(&mut log, &expected, last_base);
        prop_assert_eq!(log.recovery_point(), log.log_end_offset() - 2);
        let file_len = fs::metadata(&last_path).unwrap().len() as usize;
        prop_assert!(file_len <= damage + 200, "torn bytes were cut off");
    }

    /// Damage inside an older segment (never flushed): the log ends before the damaged batch
    /// and later segments are deleted.
    #[test]
    fn damage_in_an_older_segment(
        shapes in proptest::collection::vec((1usize..12, 0usize..100), 20..50),
        at in 0.0f64..1.0,
        mask in 1u8..=255,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c-0");
        let config = config(1500);
        let batches = write_and_crash(&dir, &config, &shapes);
        let segments = segment_files(&dir);
        prop_assume!(segments.len() >= 3);
        let (victim_base, victim_path) = segments[segments.len() / 2].clone();
        let in_victim: Vec<&OnDisk> = batches.iter().filter(|b| b.segment == victim_base).collect();
        let target = in_victim[((in_victim.len() - 1) as f64 * at) as usize];
        let q = target.position + 16 + ((target.bytes.len() - 17) as f64 * at) as usize;
        let mut bytes = fs::read(&victim_path).unwrap();
        bytes[q] ^= mask;
        fs::write(&victim_path, &bytes).unwrap();
        let expected: Vec<OnDisk> = batches.iter().filter(|b| b.next <= target.base).cloned().collect();
        let mut log = open(&dir, &config, unclean(0));
        prop_assert!(segment_files(&dir).iter().all(|(b, _)| *b <= victim_base), "later segments deleted");
        check_survivors(&mut log, &expected, victim_base);
    }
}

#[test]
fn torn_write_through_the_io_seam() {
    // Crash in the middle of every possible byte of a batch write.
    let probe = batch(3, 50, T0);
    for budget in [0, 1, 11, 12, 60, 61, 62, probe.len() as u64 - 1] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c-0");
        let config = config(100_000);
        let io = FaultyIo::new();
        let mut log = open(
            &dir,
            &config,
            LogOpenOptions {
                io: io.clone(),
                ..clean()
            },
        );
        for _ in 0..4 {
            log.append_as_leader(&batch(3, 50, T0), 0).unwrap();
        }
        let expected = on_disk(&dir);
        io.crash_after_bytes(budget);
        assert!(log.append_as_leader(&batch(3, 50, T0), 0).is_err());
        drop(log);
        let mut log = open(&dir, &config, unclean(0));
        check_survivors(&mut log, &expected, 0);
    }
}

#[test]
fn kill_after_unsynced_writes_loses_nothing() {
    // Page-cache writes survive a process kill: with no fsync at all, an unclean restart
    // keeps every complete batch, across many segments.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let config = config(1000);
    let shapes: Vec<(usize, usize)> = (0..60).map(|i| (1 + i % 5, (i * 13) % 150)).collect();
    let batches = write_and_crash(&dir, &config, &shapes);
    assert!(segment_files(&dir).len() > 5);
    let mut log = open(&dir, &config, unclean(0));
    check_survivors(&mut log, &batches, 0);
}

type Damage = fn(&Path);

fn damage_kinds() -> Vec<(&'static str, &'static str, Damage)> {
    vec![
        ("index", "deleted", |p| fs::remove_file(p).unwrap()),
        ("timeindex", "deleted", |p| fs::remove_file(p).unwrap()),
        ("index", "length not a multiple of 8", |p| {
            let mut b = fs::read(p).unwrap();
            b.push(0);
            fs::write(p, b).unwrap()
        }),
        ("index", "entries out of order", |p| {
            let mut b = fs::read(p).unwrap();
            assert!(b.len() >= 16);
            let (first, rest) = b.split_at_mut(8);
            first.swap_with_slice(&mut rest[..8]);
            fs::write(p, b).unwrap()
        }),
        ("index", "position beyond the segment", |p| {
            let mut b = fs::read(p).unwrap();
            let n = b.len();
            b[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
            fs::write(p, b).unwrap()
        }),
        (
            "index",
            "last entry points into the middle of a batch",
            |p| {
                let mut b = fs::read(p).unwrap();
                let n = b.len();
                let pos = u32::from_be_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
                b[n - 4..].copy_from_slice(&(pos + 5).to_be_bytes());
                fs::write(p, b).unwrap()
            },
        ),
        ("timeindex", "timestamps decreasing", |p| {
            let mut b = fs::read(p).unwrap();
            assert!(b.len() >= 24);
            b[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
            fs::write(p, b).unwrap()
        }),
        ("timeindex", "truncated mid-entry", |p| {
            let b = fs::read(p).unwrap();
            fs::write(p, &b[..b.len() - 5]).unwrap()
        }),
    ]
}

#[test]
fn damaged_index_files_are_rebuilt() {
    for (ext, what, damage) in damage_kinds() {
        for segment_choice in ["first", "active"] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("c-0");
            let config = config(3000);
            let mut log = open(&dir, &config, clean());
            let mut n = 0;
            // At least four segments, the active one holding several indexed batches.
            while log.segment_count() < 4
                || log.log_end_offset() - *log.segment_base_offsets().last().unwrap() < 16
            {
                log.append_as_leader(&batch(1 + n % 4, 80, T0 - 50_000 + n as i64 * 100), 0)
                    .unwrap();
                n += 1;
            }
            let probes = n as i64 + 2;
            let lookups: Vec<_> = (0..probes)
                .map(|i| log.offset_for_timestamp(T0 - 50_000 + i * 97).unwrap())
                .collect();
            log.close().unwrap();
            let batches = on_disk(&dir);
            let segments = segment_files(&dir);
            assert!(segments.len() >= 3);
            let base = if segment_choice == "first" {
                segments[0].0
            } else {
                segments.last().unwrap().0
            };
            let path = dir.join(segment_file_name(base, ext));
            let original = fs::read(&path).unwrap();
            damage(&path);
            let mut log = open(&dir, &config, clean());
            let ctx = format!("{ext} {what} in the {segment_choice} segment");
            let again: Vec<_> = (0..probes)
                .map(|i| log.offset_for_timestamp(T0 - 50_000 + i * 97).unwrap())
                .collect();
            assert_eq!(again, lookups, "{ctx}: timestamp look-ups");
            assert!(path.exists(), "{ctx}: rebuilt file exists");
            if segment_choice == "first" {
                assert_eq!(
                    fs::read(&path).unwrap(),
                    original,
                    "{ctx}: rebuilt identically"
                );
            }
            check_survivors(&mut log, &batches, 0);
        }
    }
}

#[test]
fn clean_reopen_does_not_rewrite_sound_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let config = config(3000);
    let mut log = open(&dir, &config, clean());
    for _ in 0..30 {
        log.append_as_leader(&batch(2, 100, T0), 0).unwrap();
    }
    log.close().unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
        })
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let log = open(&dir, &config, clean());
    log.close().unwrap();
    for (p, b) in before {
        assert_eq!(fs::read(&p).unwrap(), b, "{}", p.display());
    }
}
