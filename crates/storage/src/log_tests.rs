use super::*;
use crate::testing::FaultyIo;
use fjord_common::ManualClock;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{BatchBuilder, Record};

const T0: i64 = 1_700_000_000_000;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    Fixture {
        _tmp: tmp,
        dir,
        clock: ManualClock::new(T0),
    }
}

impl Fixture {
    fn open(&self, config: LogConfig, opts: LogOpenOptions) -> Log {
        Log::open(
            &self.dir,
            TopicPartition::new("t", 0),
            config,
            opts,
            Arc::new(self.clock.clone()),
        )
        .unwrap()
    }
    fn create(&self, config: LogConfig) -> Log {
        self.open(
            config,
            LogOpenOptions {
                clean_shutdown: true,
                ..Default::default()
            },
        )
    }
    fn reopen(&self, config: LogConfig, clean: bool) -> Log {
        self.open(
            config,
            LogOpenOptions {
                clean_shutdown: clean,
                ..Default::default()
            },
        )
    }
}

fn cfg(pairs: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides(pairs.iter().copied())
        .unwrap()
}

fn batch(n: usize, ts: i64, value_len: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, ts);
    for i in 0..n {
        b.push(
            Record::new(
                Some(format!("k{i}").into_bytes()),
                Some(vec![b'x'; value_len]),
            )
            .with_timestamp(ts + i as i64),
        );
    }
    b.build().unwrap().to_vec()
}

fn idem_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, T0).producer(pid, epoch, seq);
    for _ in 0..n {
        b.push(Record::new(None, Some(b"v".to_vec())));
    }
    b.build().unwrap().to_vec()
}

fn read_all(log: &Log) -> Vec<(i64, Vec<u8>)> {
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

#[test]
fn log_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<Log>();
    assert::<SharedLog>();
    assert::<crate::LogManager>();
}

#[test]
fn appends_assign_offsets_and_stamp_epochs() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    let b = batch(3, T0, 10);
    let info = log.append_as_leader(&b, 5).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 2, 3)
    );
    assert_eq!(info.max_timestamp, T0 + 2);
    assert_eq!(info.log_append_time, -1);
    assert!(!info.duplicate);
    let h = validate_batch(&b).unwrap();
    assert_eq!(
        (h.base_offset, h.partition_leader_epoch),
        (0, -1),
        "the caller's batch is left as it was"
    );
    let b2 = batch(2, T0, 10);
    let info = log.append_as_leader(&b2, 5).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.latest_epoch(), Some(5));
    let all = read_all(&log);
    assert_eq!(all.len(), 2);
    let stored = |mut batch: Vec<u8>, base: i64| {
        set_base_offset(&mut batch, base);
        set_partition_leader_epoch(&mut batch, 5);
        batch
    };
    assert_eq!(all[0].1, stored(b, 0));
    assert_eq!(all[1].1, stored(b2, 3));
    let h = BatchHeader::parse(&all[1].1).unwrap();
    assert_eq!((h.base_offset, h.partition_leader_epoch), (3, 5));
    assert!(f.dir.join("00000000000000000000.log").exists());
}

#[test]
fn rejects_bad_batches() {
    let f = fixture();
    let mut log = f.create(cfg(&[("max.message.bytes", "2000")]));
    let mut two = batch(1, T0, 10);
    two.extend(batch(1, T0, 10));
    assert!(matches!(
        log.append_as_leader(&two, 0),
        Err(StorageError::InvalidRecord(_))
    ));
    let mut bad = batch(2, T0, 10);
    let n = bad.len();
    bad[n - 1] ^= 1;
    let err = log.append_as_leader(&bad, 0).unwrap_err();
    assert!(matches!(
        err,
        StorageError::Corrupt(BatchError::CrcMismatch { .. })
    ));
    assert_eq!(err.error_code(), fjord_common::ErrorCode::CorruptMessage);
    let big = batch(1, T0, 3000);
    let err = log.append_as_leader(&big, 0).unwrap_err();
    assert!(matches!(
        err,
        StorageError::RecordTooLarge { max: 2000, .. }
    ));
    let mut short = batch(1, T0, 10);
    short.pop();
    assert!(matches!(
        log.append_as_leader(&short, 0),
        Err(StorageError::Corrupt(_))
    ));
    let future = batch(1, T0 + 3_600_001, 10);
    assert!(matches!(
        log.append_as_leader(&future, 0),
        Err(StorageError::InvalidTimestamp { .. })
    ));
    let mut control = BatchBuilder::new(Compression::None, T0);
    control.push(Record::new(None, None));
    let mut control = control.build().unwrap().to_vec();
    control[22] |= 0x20; // control bit in attributes
    let crc = fjord_protocol::batch::compute_crc(&control);
    control[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        log.append_as_leader(&control, 0),
        Err(StorageError::InvalidRecord(_))
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing was appended");
}

#[test]
fn rolls_by_size() {
    let f = fixture();
    let one = batch(1, T0, 100).len();
    let mut log = f.create(cfg(&[("segment.bytes", &(one * 3).to_string())]));
    for _ in 0..10 {
        log.append_as_leader(&batch(1, T0, 100), 0).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 6, 9]);
    assert!(f.dir.join("00000000000000000003.log").exists());
    assert!(
        f.dir.join("00000000000000000003.snapshot").exists(),
        "snapshot at roll"
    );
    assert_eq!(read_all(&log).len(), 10);
    let err = log.append_as_leader(&batch(6, T0, 100), 0).unwrap_err();
    assert!(matches!(err, StorageError::BatchLargerThanSegment { .. }));
}

#[test]
fn rolls_by_time_kafka_rule() {
    let f = fixture();
    let mut log = f.create(cfg(&[("segment.ms", "1000")]));
    log.append_as_leader(&batch(1, T0, 10), 0).unwrap();
    log.append_as_leader(&batch(1, T0 + 1000, 10), 0).unwrap();
    assert_eq!(log.segment_count(), 1, "exactly segment.ms apart: no roll");
    log.append_as_leader(&batch(1, T0 + 1001, 10), 0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    // LogAppendTime: the clock decides.
    let f2 = fixture();
    let mut log = f2.create(cfg(&[
        ("segment.ms", "1000"),
        ("message.timestamp.type", "LogAppendTime"),
    ]));
    let info = log.append_as_leader(&batch(1, 5, 10), 0).unwrap();
    assert_eq!(info.log_append_time, T0);
    assert_eq!(info.max_timestamp, T0);
    f2.clock.advance(999);
    log.append_as_leader(&batch(1, 5, 10), 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    f2.clock.advance(2);
    log.append_as_leader(&batch(1, 5, 10), 0).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn rolls_when_index_is_full() {
    let f = fixture();
    let mut log = f.create(cfg(&[
        ("segment.index.bytes", "24"),
        ("index.interval.bytes", "0"),
    ]));
    for _ in 0..8 {
        log.append_as_leader(&batch(1, T0, 10), 0).unwrap();
    }
    // index.interval.bytes=0: every batch after the first gets an entry, and 24 bytes hold 3
    // offset entries, so a segment takes 4 batches.
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(read_all(&log).len(), 8);
}

#[test]
fn reads_whole_batches_within_bounds() {
    let f = fixture();
    let mut log = f.create(cfg(&[("index.interval.bytes", "100")]));
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let b = batch(5, T0, 50);
        sizes.push(b.len());
        log.append_as_leader(&b, 0).unwrap();
    }
    let size = sizes[0];
    // Middle of a batch → that whole batch.
    let r = log.read(12, size, i64::MAX, false).unwrap();
    assert_eq!((r.first_offset, r.next_offset, r.len()), (10, 15, size));
    assert_eq!(r.slice.as_ref().unwrap().position, 2 * size as u64);
    // max_bytes cuts at batch boundaries.
    let r = log.read(0, size * 3 + size / 2, i64::MAX, false).unwrap();
    assert_eq!((r.len(), r.next_offset), (size * 3, 15));
    // Nothing fits: empty unless min_one_batch.
    assert!(log.read(20, size - 1, i64::MAX, false).unwrap().is_empty());
    let r = log.read(20, 1, i64::MAX, true).unwrap();
    assert_eq!((r.first_offset, r.len()), (20, size));
    // max_offset (high watermark) excludes batches reaching it.
    let r = log.read(0, 1 << 20, 22, true).unwrap();
    assert_eq!((r.len(), r.next_offset), (size * 4, 20));
    assert!(log.read(20, 1 << 20, 22, true).unwrap().is_empty());
    let r = log.read(0, 1 << 20, 25, true).unwrap();
    assert_eq!(r.len(), size * 5);
    // End and out of range.
    let r = log.read(50, 100, i64::MAX, true).unwrap();
    assert!(r.is_empty());
    assert_eq!(r.log_end_offset, 50);
    assert!(matches!(
        log.read(51, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange {
            requested: 51,
            log_start: 0,
            log_end: 50
        })
    ));
    // Bytes are the stored batches.
    let bytes = log
        .read(0, 1 << 20, i64::MAX, true)
        .unwrap()
        .slice
        .unwrap()
        .read_bytes()
        .unwrap();
    assert_eq!(bytes.len(), sizes.iter().sum::<usize>());
    assert_eq!(BatchIter::new(&bytes).count(), 10);
}

#[test]
fn reads_stop_at_segment_end_and_continue_in_next() {
    let f = fixture();
    let one = batch(2, T0, 30).len();
    let mut log = f.create(cfg(&[("segment.bytes", &(one * 2).to_string())]));
    for _ in 0..5 {
        log.append_as_leader(&batch(2, T0, 30), 0).unwrap();
    }
    let r = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!((r.len(), r.next_offset), (2 * one, 4));
    let r = log.read(4, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!((r.first_offset, r.next_offset), (4, 8));
    let r = log.read(9, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!((r.first_offset, r.next_offset, r.len()), (8, 10, one));
}

#[test]
fn deleted_segment_stays_readable_through_a_slice() {
    let f = fixture();
    let one = batch(1, T0, 30).len();
    let mut log = f.create(cfg(&[("segment.bytes", &(one * 2).to_string())]));
    for _ in 0..6 {
        log.append_as_leader(&batch(1, T0, 30), 0).unwrap();
    }
    let r = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!(log.delete_records_before(4).unwrap(), 2);
    assert_eq!(log.log_start_offset(), 4);
    assert!(!f.dir.join("00000000000000000000.log").exists());
    let bytes = r.slice.unwrap().read_bytes().unwrap();
    assert_eq!(bytes.len(), 2 * one);
    assert!(matches!(
        log.read(3, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn timestamp_lookups() {
    let f = fixture();
    let mut log = f.create(cfg(&[
        ("index.interval.bytes", "1"),
        ("segment.bytes", "700"),
    ]));
    // Batches of 5 records with timestamps base..base+4; bases 0, 100, 50, 200, ...
    let bases = [0, 100, 50, 200, 300, 250, 400, 500, 450, 600];
    for (i, b) in bases.iter().enumerate() {
        let bytes = batch(5, T0 + b, 20);
        log.append_as_leader(&bytes, i as i32).unwrap();
    }
    assert!(log.segment_count() > 2);
    let find = |ts| {
        log.offset_for_timestamp(T0 + ts)
            .unwrap()
            .map(|t| (t.timestamp - T0, t.offset))
    };
    assert_eq!(find(0), Some((0, 0)));
    assert_eq!(find(3), Some((3, 3)));
    assert_eq!(
        find(5),
        Some((100, 5)),
        "first record with ts ≥ 5 is in batch 2"
    );
    assert_eq!(find(52), Some((100, 5)));
    assert_eq!(find(104), Some((104, 9)));
    assert_eq!(find(105), Some((200, 15)));
    assert_eq!(find(260), Some((300, 20)));
    assert_eq!(find(604), Some((604, 49)));
    assert_eq!(find(605), None);
    let t = log.offset_for_timestamp(T0 + 201).unwrap().unwrap();
    assert_eq!(t.leader_epoch, Some(3));
    let max = log.max_timestamp().unwrap().unwrap();
    assert_eq!((max.timestamp - T0, max.offset), (604, 49));
    // After restart (clean), the max timestamp survives in the time index.
    log.close().unwrap();
    let log = f.reopen(LogConfig::default(), true);
    let max = log.max_timestamp().unwrap().unwrap();
    assert_eq!((max.timestamp - T0, max.offset), (604, 49));
    assert_eq!(
        log.offset_for_timestamp(T0 + 260).unwrap().unwrap().offset,
        20
    );
}

#[test]
fn log_append_time_applies_to_lookups() {
    let f = fixture();
    let mut log = f.create(cfg(&[("message.timestamp.type", "LogAppendTime")]));
    log.append_as_leader(&batch(3, 5, 10), 0).unwrap();
    f.clock.advance(10);
    log.append_as_leader(&batch(3, 5, 10), 0).unwrap();
    let t = log.offset_for_timestamp(T0 + 1).unwrap().unwrap();
    assert_eq!((t.timestamp, t.offset), (T0 + 10, 3));
    let max = log.max_timestamp().unwrap().unwrap();
    assert_eq!((max.timestamp, max.offset), (T0 + 10, 3));
    // The stamped batches carry a CRC that covers the new timestamp.
    for (_, stored) in read_all(&log) {
        let h = validate_batch(&stored).unwrap();
        assert!(h.is_log_append_time());
    }
}

#[test]
fn idempotent_producer_rules() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    log.append_as_leader(&batch(2, T0, 5), 0).unwrap(); // non-idempotent: offsets 0, 1
    let a = log.append_as_leader(&idem_batch(9, 0, 0, 3), 0).unwrap();
    assert_eq!((a.first_offset, a.last_offset), (2, 4));
    let b = log.append_as_leader(&idem_batch(9, 0, 3, 2), 0).unwrap();
    assert_eq!((b.first_offset, b.last_offset), (5, 6));
    // Retry of the first batch: same offsets, nothing appended.
    let dup = log.append_as_leader(&idem_batch(9, 0, 0, 3), 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (2, 4));
    assert_eq!(log.log_end_offset(), 7);
    // Gap.
    let err = log
        .append_as_leader(&idem_batch(9, 0, 6, 1), 0)
        .unwrap_err();
    assert!(matches!(
        err,
        StorageError::OutOfOrderSequence {
            producer_id: 9,
            expected: 5,
            found: 6
        }
    ));
    assert_eq!(
        err.error_code(),
        fjord_common::ErrorCode::OutOfOrderSequenceNumber
    );
    // Bumped epoch must restart at 0; the old epoch is then fenced.
    assert!(matches!(
        log.append_as_leader(&idem_batch(9, 1, 5, 1), 0),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    log.append_as_leader(&idem_batch(9, 1, 0, 1), 0).unwrap();
    let err = log
        .append_as_leader(&idem_batch(9, 0, 5, 1), 0)
        .unwrap_err();
    assert!(matches!(
        err,
        StorageError::InvalidProducerEpoch {
            current: 1,
            found: 0,
            ..
        }
    ));
    // A new producer may start anywhere.
    log.append_as_leader(&idem_batch(10, 3, 77, 1), 0).unwrap();
    assert_eq!(log.producer_count(), 2);
}

#[test]
fn producer_state_survives_restarts() {
    for clean in [true, false] {
        let f = fixture();
        let one = idem_batch(1, 0, 0, 2).len();
        let config = cfg(&[("segment.bytes", &(one * 3).to_string())]);
        let mut log = f.create(config.clone());
        let mut seq = 0;
        for _ in 0..7 {
            log.append_as_leader(&idem_batch(1, 0, seq, 2), 0).unwrap();
            seq += 2;
        }
        log.append_as_leader(&idem_batch(2, 4, 100, 1), 0).unwrap();
        let before = log.producer_state(1).cloned().unwrap();
        if clean {
            log.close().unwrap();
        } else {
            drop(log); // kill -9: no snapshot at close
        }
        let mut log = f.reopen(config.clone(), clean);
        assert_eq!(log.producer_state(1), Some(&before), "clean={clean}");
        assert_eq!(log.producer_state(2).unwrap().last_seq(), 100);
        let dup = log.append_as_leader(&idem_batch(1, 0, 10, 2), 0).unwrap();
        assert!(dup.duplicate, "clean={clean}");
        assert_eq!(dup.first_offset, 10);
        assert!(log.append_as_leader(&idem_batch(1, 0, 15, 1), 0).is_err());
        log.append_as_leader(&idem_batch(1, 0, 14, 1), 0).unwrap();
        // Truncation rewinds producer state.
        log.truncate_to(10).unwrap();
        assert_eq!(
            log.producer_state(1).unwrap().last_seq(),
            9,
            "clean={clean}"
        );
        assert!(log.producer_state(2).is_none());
        log.append_as_leader(&idem_batch(1, 0, 10, 2), 0).unwrap();
    }
}

#[test]
fn corrupt_snapshot_falls_back_to_older_or_scan() {
    let f = fixture();
    let one = idem_batch(1, 0, 0, 2).len();
    let config = cfg(&[("segment.bytes", &(one * 2).to_string())]);
    let mut log = f.create(config.clone());
    for i in 0..6 {
        log.append_as_leader(&idem_batch(1, 0, i * 2, 2), 0)
            .unwrap();
    }
    log.close().unwrap();
    let snap = f.dir.join(segment_file_name(12, "snapshot"));
    let mut bytes = fs::read(&snap).unwrap();
    bytes[30] ^= 0xff;
    fs::write(&snap, bytes).unwrap();
    let log = f.reopen(config, true);
    assert_eq!(log.producer_state(1).unwrap().last_seq(), 11);
    assert!(!snap.exists());
}

#[test]
fn leader_epoch_cache_follows_appends_and_truncation() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    log.append_as_leader(&batch(2, T0, 5), 0).unwrap();
    log.append_as_leader(&batch(2, T0, 5), 0).unwrap();
    log.append_as_leader(&batch(2, T0, 5), 2).unwrap();
    log.append_as_leader(&batch(2, T0, 5), 1).unwrap(); // stale epoch: cache unchanged
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 0,
                start_offset: 0
            },
            EpochEntry {
                epoch: 2,
                start_offset: 4
            }
        ]
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    assert_eq!(log.end_offset_for_epoch(3), None);
    log.assign_epoch(3, 8).unwrap();
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    let text = fs::read_to_string(f.dir.join("leader-epoch-checkpoint")).unwrap();
    assert_eq!(text, "0\n3\n0 0\n2 4\n3 8\n");
    log.truncate_to(4).unwrap();
    assert_eq!(log.latest_epoch(), Some(0));
    drop(log);
    let log = f.reopen(LogConfig::default(), false);
    assert_eq!(
        log.epoch_entries(),
        &[EpochEntry {
            epoch: 0,
            start_offset: 0
        }]
    );
}

#[test]
fn follower_appends_keep_offsets() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    let mut set = Vec::new();
    let mut b = BatchBuilder::new(Compression::None, T0)
        .base_offset(0)
        .partition_leader_epoch(3);
    b.push(Record::new(None, Some(b"a".to_vec())));
    b.push(Record::new(None, Some(b"b".to_vec())));
    set.extend_from_slice(&b.build().unwrap());
    let mut b = BatchBuilder::new(Compression::None, T0 + 5)
        .base_offset(10)
        .partition_leader_epoch(4);
    b.push(Record::new(None, Some(b"c".to_vec())));
    set.extend_from_slice(&b.build().unwrap());
    let torn_tail = &batch(1, T0, 10)[..20];
    set.extend_from_slice(torn_tail);
    let info = log.append_as_follower(&set).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 10, 3)
    );
    assert_eq!(info.max_timestamp, T0 + 5);
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 3,
                start_offset: 0
            },
            EpochEntry {
                epoch: 4,
                start_offset: 10
            }
        ]
    );
    let r = log.read(5, 1 << 20, i64::MAX, true).unwrap();
    assert_eq!(r.first_offset, 10);
    let mut stale = BatchBuilder::new(Compression::None, T0).base_offset(10);
    stale.push(Record::new(None, None));
    let err = log.append_as_follower(&stale.build().unwrap()).unwrap_err();
    assert!(matches!(
        err,
        StorageError::UnexpectedAppendOffset {
            expected_at_least: 11,
            found: 10
        }
    ));
}

#[test]
fn truncation_and_full_truncation() {
    let f = fixture();
    let one = batch(2, T0, 20).len();
    let mut log = f.create(cfg(&[("segment.bytes", &(one * 2).to_string())]));
    for _ in 0..6 {
        log.append_as_leader(&batch(2, T0, 20), 0).unwrap();
    }
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 12);
    assert!(log.truncate_to(5).unwrap());
    assert_eq!(log.log_end_offset(), 4, "batch 4..=5 removed whole");
    assert_eq!(log.recovery_point(), 4);
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert!(!log.truncate_to(100).unwrap());
    let info = log.append_as_leader(&batch(2, T0, 20), 0).unwrap();
    assert_eq!(info.first_offset, 4);
    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.recovery_point()
        ),
        (100, 100, 100)
    );
    assert_eq!(log.segment_base_offsets(), vec![100]);
    assert_eq!(
        log.append_as_leader(&batch(1, T0, 20), 0)
            .unwrap()
            .first_offset,
        100
    );
    drop(log);
    let log = f.reopen(LogConfig::default(), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 101));
}

#[test]
fn retention_by_time_and_size() {
    let f = fixture();
    let one = batch(1, T0, 100).len();
    let seg_bytes = (one * 2).to_string();
    let mut log = f.create(cfg(&[
        ("segment.bytes", &seg_bytes),
        ("retention.ms", "10000"),
    ]));
    for i in 0..9 {
        log.append_as_leader(&batch(1, T0 + i * 1000, 100), 0)
            .unwrap();
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6, 8]);
    assert_eq!(log.enforce_retention().unwrap(), 0);
    f.clock.set(T0 + 13_500); // segments whose max ts < T0 + 3500 expire: [0,1] and [2,3]
    assert_eq!(log.enforce_retention().unwrap(), 2);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.segment_base_offsets(), vec![4, 6, 8]);
    // Everything expired: the active segment is rolled and deleted too; the end offset stays.
    f.clock.set(T0 + 100_000);
    assert_eq!(log.enforce_retention().unwrap(), 3);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (9, 9));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        log.enforce_retention().unwrap(),
        0,
        "an empty active segment is never deleted"
    );

    // Size: keep deleting the oldest while size - segment ≥ retention.bytes.
    let f = fixture();
    let mut log = f.create(cfg(&[
        ("segment.bytes", &seg_bytes),
        ("retention.bytes", &(one * 3).to_string()),
    ]));
    for _ in 0..9 {
        log.append_as_leader(&batch(1, T0, 100), 0).unwrap();
    }
    assert_eq!(log.enforce_retention().unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![6, 8]);
    assert_eq!(log.size_bytes(), 3 * one as u64);
    // cleanup.policy=compact: no deletion by time or size.
    let mut log = f.reopen(
        cfg(&[("retention.bytes", "0"), ("cleanup.policy", "compact")]),
        false,
    );
    assert_eq!(log.enforce_retention().unwrap(), 0);
}

#[test]
fn flush_policy_and_recovery_point() {
    let f = fixture();
    let io = FaultyIo::new();
    let opts = LogOpenOptions {
        clean_shutdown: true,
        io: io.clone(),
        ..Default::default()
    };
    let mut log = f.open(cfg(&[("flush.messages", "1")]), opts);
    let syncs = io.syncs();
    log.append_as_leader(&batch(2, T0, 10), 0).unwrap();
    assert_eq!(log.recovery_point(), 2);
    assert!(io.syncs() > syncs, "flush.messages=1 fsyncs every append");
    let mut log = f.reopen(cfg(&[("flush.ms", "1000")]), true);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 2);
    log.append_as_leader(&batch(2, T0, 10), 0).unwrap();
    assert_eq!(log.recovery_point(), 2);
    assert!(!log.flush_if_due(T0 + 10).unwrap());
    assert!(log.flush_if_due(T0 + 1000).unwrap());
    assert_eq!(log.recovery_point(), 4);
    // A roll makes the rolled segment due, but not the new active one.
    log.append_as_leader(&batch(2, T0, 10), 0).unwrap();
    log.roll().unwrap();
    log.append_as_leader(&batch(2, T0, 10), 0).unwrap();
    assert!(log.flush_if_due(T0 + 1001).unwrap());
    assert_eq!(log.recovery_point(), 6);
    assert!(!log.flush_if_due(T0 + 1002).unwrap());
}

/// A fresh log with default config whose writes go through a [`FaultyIo`].
fn faulty_log(f: &Fixture) -> (Log, Arc<FaultyIo>) {
    let io = FaultyIo::new();
    let opts = LogOpenOptions {
        clean_shutdown: true,
        io: io.clone(),
        ..Default::default()
    };
    (f.open(LogConfig::default(), opts), io)
}

#[test]
fn torn_write_then_recovery() {
    let f = fixture();
    let (mut log, io) = faulty_log(&f);
    for _ in 0..5 {
        log.append_as_leader(&batch(3, T0, 40), 0).unwrap();
    }
    let want = read_all(&log);
    io.crash_after_bytes(70);
    assert!(log.append_as_leader(&batch(3, T0, 40), 0).is_err());
    assert!(io.crashed());
    drop(log);
    let mut log = f.reopen(LogConfig::default(), false);
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(read_all(&log), want);
    assert_eq!(
        log.append_as_leader(&batch(1, T0, 40), 0)
            .unwrap()
            .first_offset,
        15
    );
}

#[test]
fn topic_id_persists() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    assert_eq!(log.topic_id(), None);
    log.set_topic_id("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert_eq!(
        fs::read_to_string(f.dir.join(PARTITION_METADATA)).unwrap(),
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA"
    );
    log.close().unwrap();
    let log = f.reopen(LogConfig::default(), true);
    assert_eq!(log.topic_id(), Some("AAAAAAAAAAAAAAAAAAAAAA"));
}

#[test]
fn closed_log_refuses_work() {
    let f = fixture();
    let mut log = f.create(LogConfig::default());
    log.close_in_place().unwrap();
    assert!(matches!(
        log.append_as_leader(&batch(1, T0, 1), 0),
        Err(StorageError::Closed(_))
    ));
    let log = f.reopen(LogConfig::default(), true);
    log.delete().unwrap();
    assert!(!f.dir.exists());
}

#[test]
fn large_batches_go_out_as_header_and_records_and_a_tear_between_them_is_cut() {
    let f = fixture();
    let (mut log, io) = faulty_log(&f);
    // 2 records of 40 KB: past the size below which header and records are joined.
    let big = batch(2, T0, 40_000);
    log.append_as_leader(&big, 3).unwrap();
    log.append_as_leader(&batch(1, T0, 10), 3).unwrap();
    let want = read_all(&log);
    let mut stored = big.clone();
    set_base_offset(&mut stored, 0);
    set_partition_leader_epoch(&mut stored, 3);
    assert_eq!(want[0].1, stored);
    // The header reaches the file, the records do not.
    io.crash_after_bytes(HEADER_SIZE as u64);
    assert!(log.append_as_leader(&big, 3).is_err());
    assert!(io.crashed());
    drop(log);
    let mut log = f.reopen(LogConfig::default(), false);
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(read_all(&log), want);
    assert_eq!(log.append_as_leader(&big, 3).unwrap().first_offset, 3);
}
