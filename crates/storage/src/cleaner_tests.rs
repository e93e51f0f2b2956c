use super::*;
use crate::checkpoint::{read_offsets, CLEANER_OFFSET_CHECKPOINT};
use crate::io::StdIo;
use crate::log::{AppendOrigin, LogOpenOptions};
use crate::manager::LogManager;
use crate::testing::FaultyIo;
use fjord_common::{Clock, ErrorCode, ManualClock};
use fjord_protocol::batch::BatchIter;

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    Fixture {
        _tmp: tmp,
        dir,
        clock: ManualClock::new(T0),
    }
}

impl Fixture {
    fn open_with(&self, config: LogConfig, opts: LogOpenOptions) -> Log {
        Log::open(
            &self.dir,
            TopicPartition::new("c", 0),
            config,
            opts,
            Arc::new(self.clock.clone()),
        )
        .unwrap()
    }
    fn create(&self, config: LogConfig) -> Log {
        self.reopen(config, true)
    }
    fn reopen(&self, config: LogConfig, clean: bool) -> Log {
        self.open_with(
            config,
            LogOpenOptions {
                clean_shutdown: clean,
                ..Default::default()
            },
        )
    }
    fn leftovers(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX))
            .collect();
        v.sort();
        v
    }
}

fn cfg(extra: &[(&str, &str)]) -> LogConfig {
    let base = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("index.interval.bytes", "100"),
    ];
    LogConfig::default()
        .with_overrides(base.iter().chain(extra).copied())
        .unwrap()
}

type Kv<'a> = (&'a str, Option<&'a str>);

fn batch_with(records: &[Kv<'_>], ts: i64, codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec, ts);
    for (i, (k, v)) in records.iter().enumerate() {
        b.push(
            Record::new(
                Some(k.as_bytes().to_vec()),
                v.map(|v| v.as_bytes().to_vec()),
            )
            .with_timestamp(ts + i as i64),
        );
    }
    b.build().unwrap().to_vec()
}

fn batch(records: &[Kv<'_>], ts: i64) -> Vec<u8> {
    batch_with(records, ts, Compression::None)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    ts: i64,
}

/// Every record readable from the log start, in order, plus the headers of the batches.
fn contents(log: &Log) -> (Vec<Rec>, Vec<BatchHeader>) {
    let (mut recs, mut headers) = (Vec::new(), Vec::new());
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let Some(slice) = r.slice else { break };
        let bytes = slice.read_bytes().unwrap();
        for item in BatchIter::new(&bytes) {
            let (h, range) = item.unwrap();
            let d = decode_batch(&bytes[range]).unwrap();
            headers.push(h);
            recs.extend(d.records.into_iter().map(|r| Rec {
                offset: r.offset,
                key: r.key,
                value: r.value,
                ts: r.timestamp,
            }));
        }
        assert!(r.next_offset > offset, "reads make progress");
        offset = r.next_offset;
    }
    (recs, headers)
}

fn records(log: &Log) -> Vec<Rec> {
    contents(log).0
}

/// The model: below `end`, only each key's latest record survives, minus tombstones older
/// than `horizon`.
fn model(before: &[Rec], end: i64, horizon: i64) -> Vec<Rec> {
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    for r in before.iter().filter(|r| r.offset < end) {
        if let Some(k) = &r.key {
            latest.insert(k.clone(), r.offset);
        }
    }
    before
        .iter()
        .filter(|r| {
            if r.offset >= end {
                return true;
            }
            let Some(k) = &r.key else { return false };
            latest.get(k) == Some(&r.offset) && !(r.value.is_none() && r.ts < horizon)
        })
        .cloned()
        .collect()
}

fn key(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// 30 batches over five keys ("k0".."k4"), a tombstone for k3 at the end, several segments,
/// then a roll so that everything is cleanable.
fn fill(log: &mut Log, clock: &ManualClock) {
    for i in 0..30 {
        let k = format!("k{}", i % 5);
        let v = format!("value-{i}-{}", "x".repeat(40));
        let k2 = format!("k{}", (i + 2) % 5);
        let records = [
            (k.as_str(), Some(v.as_str())),
            (k2.as_str(), Some("second")),
        ];
        log.append_as_leader(&batch(&records, clock.now_ms()), i / 10)
            .unwrap();
        clock.advance(1000);
    }
    log.append_as_leader(&batch(&[("k3", None)], clock.now_ms()), 2)
        .unwrap();
    log.roll().unwrap();
}

/// `fill`, and for a merging scenario one pass plus a little more data, so that the next pass
/// merges several (small, cleaned) segments into one.
fn scenario(log: &mut Log, clock: &ManualClock, merging: bool) {
    fill(log, clock);
    if merging {
        log.compact(clock.now_ms()).unwrap();
        log.append_as_leader(&batch(&[("k0", Some("last"))], clock.now_ms()), 2)
            .unwrap();
        log.roll().unwrap();
    }
}

fn offsets_strictly_increase(recs: &[Rec]) -> bool {
    recs.windows(2).all(|w| w[0].offset < w[1].offset)
}

#[test]
fn key_map_keeps_the_latest_offset() {
    let mut m = KeyMap::default();
    m.put(key("a"), 5);
    m.put(key("b"), 6);
    m.put(key("a"), 9);
    m.put(key("a"), 7);
    assert_eq!(m.get(b"a"), Some(9));
    assert_eq!(m.get(b"b"), Some(6));
    assert_eq!(m.get(b"c"), None);
    assert_eq!(m.len(), 2);
    assert_eq!(m.memory(), 2 * (1 + KEY_MAP_ENTRY_OVERHEAD));
}

#[test]
fn retention_rule() {
    let mut m = KeyMap::default();
    m.put(key("a"), 10);
    let rec = |k: Option<&str>, v: Option<&str>, offset: i64, ts: i64| {
        let mut r = Record::new(k.map(|k| k.as_bytes().to_vec()), v.map(|v| v.into()));
        r.offset = offset;
        r.timestamp = ts;
        r
    };
    let horizon = 1000;
    assert_eq!(
        verdict(&rec(Some("a"), Some("x"), 9, 5000), &m, horizon, 0),
        Verdict::Superseded
    );
    assert_eq!(
        verdict(&rec(Some("a"), Some("x"), 10, 0), &m, horizon, 0),
        Verdict::Keep
    );
    assert_eq!(
        verdict(&rec(Some("b"), Some("x"), 3, 0), &m, horizon, 0),
        Verdict::Keep
    );
    assert_eq!(
        verdict(&rec(None, Some("x"), 11, 5000), &m, horizon, 0),
        Verdict::NoKey
    );
    // Tombstones: removed strictly older than the horizon, superseded ones always.
    assert_eq!(
        verdict(&rec(Some("a"), None, 10, 999), &m, horizon, 0),
        Verdict::ExpiredTombstone
    );
    assert_eq!(
        verdict(&rec(Some("a"), None, 10, 1000), &m, horizon, 0),
        Verdict::Keep
    );
    assert_eq!(
        verdict(&rec(Some("a"), None, 8, 5000), &m, horizon, 0),
        Verdict::Superseded
    );
    // Without a timestamp the fallback decides.
    assert_eq!(
        verdict(&rec(Some("c"), None, 1, -1), &m, horizon, 999),
        Verdict::ExpiredTombstone
    );
    assert_eq!(
        verdict(&rec(Some("c"), None, 1, -1), &m, horizon, 2000),
        Verdict::Keep
    );
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_offset() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let before = records(&log);
    let (leo, segments_before) = (log.log_end_offset(), log.segment_count());
    assert!(segments_before > 4, "{segments_before} segments");
    let epochs = log.epoch_entries().to_vec();
    let now = f.clock.now_ms();
    let stats = log.compact(now).unwrap();
    assert_eq!((stats.first_dirty_offset, stats.end_offset), (0, leo));
    assert_eq!(stats.keys, 5);
    assert!(stats.segments_written >= 1 && stats.segments_written < segments_before);
    let (after, headers) = contents(&log);
    assert_eq!(after, model(&before, leo, now - DAY));
    // k0..k4: the latest of each, k3's tombstone is young and stays.
    assert_eq!(after.len(), 5);
    assert!(after
        .iter()
        .any(|r| r.key == Some(key("k3")) && r.value.is_none()));
    assert!(offsets_strictly_increase(&after));
    assert_eq!(stats.records_retained, 5);
    assert_eq!(stats.superseded_removed, 56);
    // Offsets, spans and the log end are kept; the last batch of a group may be empty.
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.first_dirty_offset(), leo);
    for h in &headers {
        assert!(h.record_count <= h.last_offset_delta + 1);
        assert_eq!(h.partition_leader_epoch, (h.base_offset / 20).min(2) as i32);
    }
    // Every offset is readable and lands on the batch holding it or the next one.
    for o in 0..leo {
        let r = log.read(o, 1, i64::MAX, true).unwrap();
        let bytes = r.slice.unwrap().read_bytes().unwrap();
        let h = BatchHeader::parse(&bytes).unwrap();
        assert!(h.last_offset() >= o, "offset {o}");
        assert!(r.next_offset > o);
    }
    // Time look-ups see only retained records.
    for r in &after {
        let found = log.offset_for_timestamp(r.ts).unwrap().unwrap();
        assert_eq!(found.offset, r.offset);
    }
    assert_eq!(log.epoch_entries(), &epochs[..], "leader epochs untouched");
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 40)));
    // A second pass has nothing dirty.
    let again = log.compact(now).unwrap();
    assert!(!again.did_work());
    // Appends go on; reopening (clean and unclean) gives the same contents.
    log.append_as_leader(&batch(&[("k1", Some("new"))], now), 3)
        .unwrap();
    let expected = records(&log);
    log.close().unwrap();
    for clean in [true, false] {
        let log = f.reopen(cfg(&[]), clean);
        assert_eq!(records(&log), expected, "clean={clean}");
        assert_eq!(log.log_end_offset(), leo + 1);
        log.close().unwrap();
    }
    assert!(f.leftovers().is_empty());
}

#[test]
fn indexes_of_cleaned_segments_match_a_rebuild() {
    let f = fixture();
    let mut log = f.create(cfg(&[("segment.bytes", "4000")]));
    fill(&mut log, &f.clock);
    log.compact(f.clock.now_ms()).unwrap();
    let io = StdIo;
    for seg in &log.segments[..log.segments.len() - 1] {
        let mut rebuilt = Segment::open(&f.dir, seg.base_offset, 0, 0).unwrap();
        assert!(
            rebuilt.load().unwrap(),
            "index files load and match the data"
        );
        assert_eq!(rebuilt.offset_index.entries, seg.offset_index.entries);
        assert_eq!(rebuilt.time_index.entries, seg.time_index.entries);
        rebuilt.recover(&io, 100).unwrap();
        assert_eq!(rebuilt.offset_index.entries, seg.offset_index.entries);
        assert_eq!(rebuilt.next_offset, seg.next_offset);
        assert_eq!(rebuilt.max_timestamp, seg.max_timestamp);
    }
}

#[test]
fn tombstones_expire_after_delete_retention() {
    let f = fixture();
    let config = cfg(&[("delete.retention.ms", "10000")]);
    let mut log = f.create(config.clone());
    let t = f.clock.now_ms();
    log.append_as_leader(&batch(&[("a", Some("1")), ("b", Some("1"))], t), 0)
        .unwrap();
    log.append_as_leader(&batch(&[("a", None)], t + 1000), 0)
        .unwrap();
    log.append_as_leader(&batch(&[("b", None)], t + 5000), 0)
        .unwrap();
    log.roll().unwrap();
    f.clock.advance(6000);
    // At t + 11_000 (horizon t + 1000): neither tombstone is older than 10 s.
    let s = log.compact(t + 11_000).unwrap();
    assert_eq!(s.tombstones_removed, 0);
    let recs = records(&log);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 3],
        "values superseded, both tombstones kept"
    );
    assert_eq!(s.oldest_tombstone_ms, Some(t + 1000));
    // Nothing is dirty, but a's tombstone (t + 1000) expires after t + 11_000: that alone
    // makes the log eligible (KIP-534), and a pass removes it; b's (t + 5000) stays.
    let info = log.cleanable(t + 11_000);
    assert!(!info.has_dirty() && !info.tombstones_expired && !info.needs_cleaning(&config));
    let info = log.cleanable(t + 11_001);
    assert!(!info.has_dirty() && info.tombstones_expired && info.needs_cleaning(&config));
    let s = log.compact(t + 11_001).unwrap();
    assert_eq!(s.tombstones_removed, 1);
    assert_eq!(s.oldest_tombstone_ms, Some(t + 5000));
    let recs = records(&log);
    assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![3]);
    assert!(!log.cleanable(t + 11_001).needs_cleaning(&config));
    log.append_as_leader(&batch(&[("c", Some("1"))], t + 6000), 0)
        .unwrap();
    log.roll().unwrap();
    let s = log.compact(t + 11_001).unwrap();
    assert_eq!(s.tombstones_removed, 0);
    let recs = records(&log);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![3, 4]
    );
    // Much later, only c is left; the offsets and the log end are unchanged.
    log.append_as_leader(&batch(&[("d", Some("1"))], t + 6000), 0)
        .unwrap();
    log.roll().unwrap();
    let s = log.compact(t + 100_000).unwrap();
    assert_eq!(s.tombstones_removed, 1);
    let recs = records(&log);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let f = fixture();
    let config = cfg(&[("min.compaction.lag.ms", "60000"), ("segment.bytes", "300")]);
    let mut log = f.create(config);
    let t = f.clock.now_ms();
    for i in 0..12 {
        let v = format!("v{i}-{}", "y".repeat(60));
        log.append_as_leader(&batch(&[("k", Some(v.as_str()))], t + i * 10_000), 0)
            .unwrap();
    }
    log.roll().unwrap();
    // At t + 100 s only segments whose records are all older than t + 40 s are cleanable.
    let now = t + 100_000;
    let info = log.cleanable(now);
    let bases = log.segment_base_offsets();
    assert!(info.first_uncleanable_offset < log.log_end_offset());
    assert!(bases.contains(&info.first_uncleanable_offset));
    let before = records(&log);
    let stats = log.compact(now).unwrap();
    assert_eq!(stats.end_offset, info.first_uncleanable_offset);
    let after = records(&log);
    assert_eq!(after, model(&before, stats.end_offset, now - DAY));
    // The newest cleaned record is at least 60 s old; everything younger is untouched.
    let young: Vec<_> = before.iter().filter(|r| r.ts > now - 60_000).collect();
    assert!(!young.is_empty());
    for r in young {
        assert!(after.contains(r), "young record {} kept", r.offset);
    }
    assert!(after.len() > 1, "k has several records left");
    // Once everything is old enough, one value remains.
    let stats = log.compact(t + 1_000_000).unwrap();
    assert_eq!(stats.end_offset, log.log_end_offset());
    assert_eq!(records(&log).len(), 1);
}

#[test]
fn dirty_ratio_and_max_lag_trigger_the_manager() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let dirs = vec![tmp.path().to_path_buf()];
    let m = LogManager::open(dirs.clone(), LogConfig::default(), Arc::new(clock.clone())).unwrap();
    let compacted = TopicPartition::new("compacted", 0);
    let plain = TopicPartition::new("plain", 0);
    let config = cfg(&[("min.cleanable.dirty.ratio", "0.5")]);
    let log = m.get_or_create(&compacted, config.clone()).unwrap();
    let other = m
        .get_or_create(&plain, cfg(&[("cleanup.policy", "delete")]))
        .unwrap();
    for l in [&log, &other] {
        let mut l = l.write();
        for i in 0..20 {
            let v = format!("{i:0>100}");
            let k = format!("k{i}");
            l.append_as_leader(&batch(&[(k.as_str(), Some(v.as_str()))], T0), 0)
                .unwrap();
        }
        l.roll().unwrap();
    }
    // Everything is dirty (no checkpoint): ratio 1.
    let info = log.read().cleanable(T0);
    assert_eq!((info.first_dirty_offset, info.clean_bytes), (0, 0));
    assert!(info.dirty_ratio() == 1.0 && info.needs_cleaning(&config));
    assert_eq!(m.run_cleaner(T0).unwrap(), 1, "only the compacted log");
    assert_eq!(log.read().first_dirty_offset(), 20);
    let cp = read_offsets(&dirs[0].join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(cp.get(&compacted), Some(&20));
    assert_eq!(cp.get(&plain), None);
    // A little new dirt: below the ratio, nothing to do.
    {
        let mut l = log.write();
        l.append_as_leader(&batch(&[("k1", Some("again"))], T0), 0)
            .unwrap();
        l.roll().unwrap();
    }
    let info = log.read().cleanable(T0);
    assert!(info.has_dirty() && info.dirty_ratio() < 0.5, "{info:?}");
    assert!(!info.needs_cleaning(&config));
    assert_eq!(m.run_cleaner(T0).unwrap(), 0);
    // max.compaction.lag.ms overrides the ratio once the dirty record waited long enough.
    let lagged = cfg(&[
        ("min.cleanable.dirty.ratio", "0.5"),
        ("max.compaction.lag.ms", "5000"),
    ]);
    log.write().update_config(lagged.clone());
    assert_eq!(log.read().cleanable(T0 + 5000).max_compaction_delay_ms, 0);
    let info = log.read().cleanable(T0 + 7000);
    assert_eq!(info.max_compaction_delay_ms, 2000);
    assert!(info.needs_cleaning(&lagged));
    assert_eq!(m.run_cleaner(T0 + 7000).unwrap(), 1);
    assert_eq!(log.read().first_dirty_offset(), 21);
    // The first dirty offset survives a restart through the checkpoint.
    drop((log, other));
    m.shutdown().unwrap();
    let m = LogManager::open(dirs.clone(), config, Arc::new(clock.clone())).unwrap();
    assert_eq!(m.get(&compacted).unwrap().read().first_dirty_offset(), 21);
    // Deleting the log drops it from the checkpoint.
    assert!(m.delete(&compacted).unwrap());
    let cp = read_offsets(&dirs[0].join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(cp.get(&compacted), None);
}

#[test]
fn cleaned_segments_merge_on_later_passes() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let segments = log.segment_count();
    let first = log.compact(f.clock.now_ms()).unwrap();
    // Groups are formed by original sizes (as Kafka), so the first pass rarely merges ...
    assert_eq!(first.segments_written, first.segments_replaced);
    log.append_as_leader(&batch(&[("k9", Some("v"))], f.clock.now_ms()), 2)
        .unwrap();
    log.roll().unwrap();
    let before = records(&log);
    // ... but the next one puts the small cleaned segments together.
    let second = log.compact(f.clock.now_ms()).unwrap();
    assert!(second.segments_replaced > second.segments_written);
    assert_eq!(
        log.segment_count(),
        2,
        "one cleaned segment plus the active one"
    );
    assert!(log.segment_count() < segments);
    assert_eq!(records(&log), before, "nothing else to remove");
    let log_files: Vec<_> = fs::read_dir(&f.dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".log") || n.ends_with("index"))
        .collect();
    let bases: std::collections::BTreeSet<_> = log_files.iter().map(|n| &n[..20]).collect();
    assert_eq!(
        bases.len(),
        2,
        "no files of replaced segments left: {log_files:?}"
    );
    log.close().unwrap();
    let log = f.reopen(cfg(&[]), true);
    assert_eq!(records(&log), before);
}

#[test]
fn compacted_logs_refuse_records_without_a_key() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    let mut b = BatchBuilder::new(Compression::Gzip, T0);
    b.push(Record::new(Some(b"k".to_vec()), Some(b"v".to_vec())));
    b.push(Record::new(None, Some(b"v".to_vec())));
    let keyless = b.build().unwrap().to_vec();
    let err = log.append_as_leader(&keyless.clone(), 0).unwrap_err();
    match &err {
        StorageError::InvalidRecord(msg) => assert_eq!(
            msg,
            "Compacted topic cannot accept message without key in topic partition c-0."
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.error_code(), ErrorCode::InvalidRecord);
    assert!(log
        .append_as_leader_from(&keyless.clone(), 0, AppendOrigin::Coordinator)
        .is_err());
    assert_eq!(log.log_end_offset(), 0);
    log.append_as_leader(&batch(&[("k", Some("v")), ("k", None)], T0), 0)
        .unwrap();
    // `compact,delete` compacts too; `delete` alone accepts keyless records.
    log.update_config(cfg(&[("cleanup.policy", "compact,delete")]));
    assert!(log.append_as_leader(&keyless.clone(), 0).is_err());
    log.update_config(cfg(&[("cleanup.policy", "delete")]));
    log.append_as_leader(&keyless, 0).unwrap();
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn keyless_records_already_in_the_log_are_dropped() {
    let f = fixture();
    let mut log = f.create(cfg(&[("cleanup.policy", "delete")]));
    let mut b = BatchBuilder::new(Compression::None, T0);
    b.push(Record::new(None, Some(b"v".to_vec())));
    b.push(Record::new(Some(b"k".to_vec()), Some(b"v".to_vec())));
    log.append_as_leader(&b.build().unwrap(), 0).unwrap();
    log.roll().unwrap();
    let s = log.compact(T0).unwrap();
    assert!(!s.did_work(), "delete policy: compact does nothing");
    assert_eq!(records(&log).len(), 2);
    log.update_config(cfg(&[]));
    let s = log.compact(T0).unwrap();
    assert_eq!(s.keyless_removed, 1);
    assert_eq!(
        records(&log).iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn producer_fields_compression_and_epochs_survive_rewrites() {
    let f = fixture();
    let mut log = f.create(cfg(&[("segment.bytes", "100000")]));
    let mut b = BatchBuilder::new(Compression::Gzip, T0).producer(42, 3, 100);
    for (k, v) in [("a", "1"), ("b", "1"), ("a", "2")] {
        b.push(Record::new(Some(k.into()), Some(v.into())));
    }
    log.append_as_leader(&b.build().unwrap(), 7).unwrap();
    // The producer's last batch is superseded entirely: it stays as an empty batch.
    let mut b = BatchBuilder::new(Compression::None, T0 + 1).producer(42, 3, 103);
    b.push(Record::new(Some(b"b".to_vec()), Some(b"2".to_vec())));
    log.append_as_leader(&b.build().unwrap(), 8).unwrap();
    log.append_as_leader(&batch(&[("b", Some("3")), ("z", Some("1"))], T0 + 2), 8)
        .unwrap();
    log.roll().unwrap();
    let state = log.producer_state(42).cloned();
    log.compact(T0 + 10).unwrap();
    let (recs, headers) = contents(&log);
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    assert_eq!(headers.len(), 3);
    let h = &headers[0];
    assert_eq!(
        (h.base_offset, h.last_offset_delta, h.record_count),
        (0, 2, 1)
    );
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (42, 3, 100)
    );
    assert_eq!(h.last_sequence(), 102);
    assert_eq!(h.compression().unwrap(), Compression::Gzip);
    assert_eq!(h.partition_leader_epoch, 7);
    let h = &headers[1];
    assert_eq!(
        (
            h.base_offset,
            h.record_count,
            h.producer_id,
            h.base_sequence
        ),
        (3, 0, 42, 103)
    );
    assert_eq!((h.max_timestamp, h.partition_leader_epoch), (T0 + 1, 8));
    assert_eq!(headers[2].record_count, 2, "untouched batch copied");
    // Producer state rebuilt from the log alone (no snapshots) is the same.
    log.close().unwrap();
    for e in fs::read_dir(&f.dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            fs::remove_file(p).unwrap();
        }
    }
    let log = f.reopen(cfg(&[("segment.bytes", "100000")]), false);
    assert_eq!(log.producer_state(42).cloned(), state);
}

#[test]
fn readers_of_replaced_segments_keep_the_old_bytes() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let r = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    let slice = r.slice.unwrap();
    let old = slice.read_bytes().unwrap();
    log.compact(f.clock.now_ms()).unwrap();
    assert_eq!(slice.read_bytes().unwrap(), old);
    let new = log.read(0, 1 << 20, i64::MAX, true).unwrap().slice.unwrap();
    assert_ne!(new.read_bytes().unwrap(), old);
}

#[test]
fn a_pass_is_discarded_when_the_log_changes_underneath() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let before = records(&log);
    let mut pass = log
        .plan_compaction(f.clock.now_ms(), &CleanerConfig::default())
        .unwrap()
        .unwrap();
    // A second pass cannot start meanwhile.
    assert!(log
        .plan_compaction(f.clock.now_ms(), &CleanerConfig::default())
        .unwrap()
        .is_none());
    pass.prepare().unwrap();
    assert!(!f.leftovers().is_empty(), "cleaned files written");
    log.truncate_to(45).unwrap();
    let stats = log.commit_compaction(pass).unwrap();
    assert!(stats.aborted && !stats.did_work());
    assert!(f.leftovers().is_empty(), "cleaned files removed");
    let kept: Vec<_> = before.into_iter().filter(|r| r.offset < 44).collect();
    assert_eq!(records(&log), kept);
    assert_eq!(log.first_dirty_offset(), 0);
    // The busy flag is released.
    log.roll().unwrap();
    assert!(log.compact(f.clock.now_ms()).unwrap().did_work());
}

#[test]
fn small_key_map_cleans_in_several_passes() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let before = records(&log);
    let leo = log.log_end_offset();
    let tiny = CleanerConfig {
        dedupe_buffer_size: 1,
        io_buffer_size: 64,
    };
    let now = f.clock.now_ms();
    let mut expected = before.clone();
    let mut passes = 0;
    let mut prev_end = 0;
    while log.first_dirty_offset() < leo {
        let s = log.compact_with(now, &tiny).unwrap();
        assert!(s.did_work());
        assert_eq!(s.first_dirty_offset, prev_end);
        assert!(s.end_offset > prev_end);
        prev_end = s.end_offset;
        expected = model(&expected, s.end_offset, now - DAY);
        assert_eq!(records(&log), expected, "pass {passes}");
        passes += 1;
    }
    assert!(passes > 1);
    assert_eq!(expected, model(&before, leo, now - DAY));
}

// ----- crash safety -----------------------------------------------------------------------

#[test]
fn open_rolls_back_a_pass_that_did_not_reach_its_commit_point() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let before = records(&log);
    let mut pass = log
        .plan_compaction(f.clock.now_ms(), &CleanerConfig::default())
        .unwrap()
        .unwrap();
    pass.prepare().unwrap();
    // Half of step 2: the first group's files are .swap, the rest still .cleaned.
    let g = &pass.groups[0];
    for ext in EXTS {
        let b = g.segment.base_offset;
        fs::rename(
            suffixed(&f.dir, b, ext, CLEANED_SUFFIX),
            suffixed(&f.dir, b, ext, SWAP_SUFFIX),
        )
        .unwrap();
    }
    pass.owns_files = false;
    drop(pass);
    drop(log); // crash
    assert!(f.leftovers().iter().any(|n| n.ends_with(".log.cleaned")));
    let log = f.reopen(cfg(&[]), true);
    assert_eq!(records(&log), before);
    assert!(f.leftovers().is_empty());
}

#[test]
fn open_completes_a_pass_past_its_commit_point() {
    for (stage, merging) in (0..4).flat_map(|s| [(s, false), (s, true)]) {
        let f = fixture();
        let mut log = f.create(cfg(&[]));
        scenario(&mut log, &f.clock, merging);
        let now = f.clock.now_ms();
        let before = records(&log);
        let expected = model(&before, log.log_end_offset(), now - DAY);
        let mut pass = log
            .plan_compaction(now, &CleanerConfig::default())
            .unwrap()
            .unwrap();
        pass.prepare().unwrap();
        if merging {
            assert!(pass.groups[0].count > 1, "the pass merges segments");
        } else {
            assert!(pass.groups.len() > 1);
        }
        pass.owns_files = false;
        pass.rename_to_swap().unwrap();
        let io = StdIo;
        // Stage 1: some originals deleted; 2: all deleted and one log renamed (its index
        // files still .swap); 3: everything but one timeindex renamed.
        if stage >= 1 {
            let v = &pass.views[pass.groups[0].first + pass.groups[0].count - 1];
            fs::remove_file(f.dir.join(segment_file_name(v.base_offset, "log"))).unwrap();
        }
        if stage >= 2 {
            pass.finish_swap_partially(&io, stage == 3).unwrap();
        }
        drop(pass);
        drop(log); // crash
        assert!(!f.leftovers().is_empty());
        for clean in [true, false] {
            let log = f.reopen(cfg(&[]), clean);
            assert_eq!(
                records(&log),
                expected,
                "stage {stage} merging={merging} clean={clean}"
            );
            assert!(f.leftovers().is_empty());
            log.close().unwrap();
        }
    }
}

impl Compaction {
    /// Step 3 and the first renames of step 4, for crash tests.
    fn finish_swap_partially(&self, io: &dyn LogIo, all_but_one: bool) -> Result<()> {
        for g in &self.groups {
            for v in &self.views[g.first..g.first + g.count] {
                for ext in EXTS {
                    remove_if_exists(io, &self.dir.join(segment_file_name(v.base_offset, ext)))?;
                }
            }
        }
        let mut renames = Vec::new();
        for g in &self.groups {
            for ext in ["log", "index", "timeindex"] {
                renames.push((
                    suffixed(&self.dir, g.segment.base_offset, ext, SWAP_SUFFIX),
                    self.dir.join(segment_file_name(g.segment.base_offset, ext)),
                ));
            }
        }
        let n = if all_but_one { renames.len() - 1 } else { 1 };
        for (from, to) in &renames[..n] {
            io.rename(from, to).at(from)?;
        }
        Ok(())
    }
}

/// Crashes a pass at every rename/removal and at several points of its writes: whatever
/// happens, reopening gives the contents from before or from after the pass, leaves no
/// `.cleaned`/`.swap` file, and a later pass gets to the same result.
#[test]
fn crash_at_any_point_of_a_pass_leaves_before_or_after() {
    crash_at_any_point(false);
}

#[test]
fn crash_at_any_point_of_a_merging_pass_leaves_before_or_after() {
    crash_at_any_point(true);
}

fn crash_at_any_point(merging: bool) {
    let reference = {
        let f = fixture();
        let mut log = f.create(cfg(&[]));
        scenario(&mut log, &f.clock, merging);
        let before = records(&log);
        log.compact(f.clock.now_ms()).unwrap();
        (before, records(&log))
    };
    let (before, after) = reference;
    assert_ne!(before, after);
    let mut crash_points: Vec<(bool, u64)> = (0..60).map(|n| (true, n)).collect();
    crash_points.extend([0, 1, 61, 500, 1000, 1500, 2500, 4000].map(|b| (false, b)));
    let (mut saw_before, mut saw_after, mut completed) = (false, false, false);
    for (fs_ops, n) in crash_points {
        let f = fixture();
        let io = FaultyIo::new();
        let opts = LogOpenOptions {
            clean_shutdown: true,
            io: io.clone(),
            ..Default::default()
        };
        let mut log = f.open_with(cfg(&[]), opts);
        scenario(&mut log, &f.clock, merging);
        if fs_ops {
            io.crash_after_fs_ops(n);
        } else {
            io.crash_after_bytes(n);
        }
        let result = log.compact(f.clock.now_ms());
        if result.is_ok() {
            assert!(!io.crashed());
            completed = true;
            continue;
        }
        assert!(io.crashed(), "{result:?}");
        assert!(
            log.is_closed() || records(&log) == before,
            "a failed pass leaves the log usable as before, or offline"
        );
        drop(log); // crash
        let mut log = f.reopen(cfg(&[]), false);
        let got = records(&log);
        assert!(
            got == before || got == after,
            "crash at {fs_ops} {n}: {got:?}"
        );
        saw_before |= got == before;
        saw_after |= got == after;
        assert!(f.leftovers().is_empty());
        log.compact(f.clock.now_ms()).unwrap();
        assert_eq!(records(&log), after);
    }
    assert!(saw_before && saw_after && completed);
}

#[test]
fn appends_and_rolls_during_a_pass_do_not_invalidate_it() {
    let f = fixture();
    let mut log = f.create(cfg(&[]));
    fill(&mut log, &f.clock);
    let now = f.clock.now_ms();
    let before = records(&log);
    let end = log.log_end_offset();
    let mut pass = log
        .plan_compaction(now, &CleanerConfig::default())
        .unwrap()
        .unwrap();
    // What compact_shared allows: the log takes appends and rolls while the pass works.
    log.append_as_leader(&batch(&[("k0", Some("during"))], now), 2)
        .unwrap();
    pass.prepare().unwrap();
    log.roll().unwrap();
    log.append_as_leader(&batch(&[("k1", Some("during"))], now), 2)
        .unwrap();
    let stats = log.commit_compaction(pass).unwrap();
    assert!(stats.did_work());
    assert_eq!(stats.end_offset, end);
    let mut all = before;
    all.extend(records(&log).into_iter().filter(|r| r.offset >= end));
    assert_eq!(all.len(), 61 + 2);
    assert_eq!(records(&log), model(&all, end, now - DAY));
    assert_eq!(log.log_end_offset(), end + 2);
    // The next pass cleans what came in meanwhile.
    log.roll().unwrap();
    log.compact(now).unwrap();
    assert_eq!(records(&log), model(&all, end + 2, now - DAY));
}

#[test]
fn compacted_logs_roll_by_max_compaction_lag() {
    let f = fixture();
    let mut log = f.create(cfg(&[("max.compaction.lag.ms", "1000")]));
    log.append_as_leader(&batch(&[("a", Some("1"))], T0), 0)
        .unwrap();
    log.append_as_leader(&batch(&[("a", Some("2"))], T0 + 1000), 0)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&batch(&[("a", Some("3"))], T0 + 1001), 0)
        .unwrap();
    assert_eq!(
        log.segment_count(),
        2,
        "rolled once the segment spans the lag"
    );
    let g = fixture();
    let mut plain = g.create(cfg(&[
        ("cleanup.policy", "delete"),
        ("max.compaction.lag.ms", "1000"),
    ]));
    for ts in [T0, T0 + 5000] {
        plain
            .append_as_leader(&batch(&[("a", Some("1"))], ts), 0)
            .unwrap();
    }
    assert_eq!(plain.segment_count(), 1, "only compacted logs");
}
