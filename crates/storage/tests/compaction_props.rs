//! Property test of log compaction: random keyed appends (a small key space, tombstones, gzip
//! batches, several segments), cleaner passes at random times, reopens (clean and after a
//! simulated kill -9), checked against a model of what must survive and, at the end, against
//! the whole append history.

// Test helpers outside #[test] functions panic on purpose.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use fjord_common::{Clock, ManualClock, TopicPartition};
use fjord_protocol::batch::BatchIter;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{decode_batch, BatchBuilder, Record};
use fjord_storage::{compact_shared, CleanerConfig, Log, LogConfig, LogOpenOptions};
use parking_lot::RwLock;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Records as (key index, tombstone, value length).
    Append {
        records: Vec<(u8, bool, usize)>,
        gzip: bool,
    },
    Roll,
    Advance(i64),
    Compact {
        shared: bool,
        small_map: bool,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            proptest::collection::vec((0u8..6, proptest::bool::weighted(0.2), 0usize..80), 1..6),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(records, gzip)| Op::Append { records, gzip }),
        2 => Just(Op::Roll),
        2 => (0i64..30_000).prop_map(Op::Advance),
        3 => (any::<bool>(), proptest::bool::weighted(0.2))
            .prop_map(|(shared, small_map)| Op::Compact { shared, small_map }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Bytes,
    value: Option<Bytes>,
    ts: i64,
}

fn open(dir: &Path, config: &LogConfig, clock: &ManualClock, clean: bool) -> Log {
    let opts = LogOpenOptions {
        clean_shutdown: clean,
        ..Default::default()
    };
    Log::open(
        dir,
        TopicPartition::new("p", 0),
        config.clone(),
        opts,
        Arc::new(clock.clone()),
    )
    .unwrap()
}

/// Reads the whole log like a consumer would, checking that every read makes progress.
fn read_all(log: &Log) -> Result<Vec<Rec>, TestCaseError> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 700, i64::MAX, true).unwrap();
        let bytes = r
            .slice
            .expect("data below the log end")
            .read_bytes()
            .unwrap();
        for item in BatchIter::new(&bytes) {
            let (h, range) = item.unwrap();
            prop_assert!(h.record_count <= h.last_offset_delta + 1);
            for r in decode_batch(&bytes[range]).unwrap().records {
                let key = r.key.expect("compacted logs hold keyed records only");
                out.push(Rec {
                    offset: r.offset,
                    key,
                    value: r.value,
                    ts: r.timestamp,
                });
            }
        }
        prop_assert!(
            r.next_offset > offset,
            "read at {} made no progress",
            offset
        );
        offset = r.next_offset;
    }
    Ok(out)
}

/// What a pass that cleaned everything below `end` at tombstone horizon `horizon` leaves.
fn model_clean(model: &[Rec], end: i64, horizon: i64) -> Vec<Rec> {
    let mut latest: HashMap<&Bytes, i64> = HashMap::new();
    for r in model.iter().filter(|r| r.offset < end) {
        latest.insert(&r.key, r.offset);
    }
    model
        .iter()
        .filter(|r| {
            r.offset >= end
                || (latest.get(&r.key) == Some(&r.offset) && !(r.value.is_none() && r.ts < horizon))
        })
        .cloned()
        .collect()
}

fn check(log: &Log, model: &[Rec]) -> Result<(), TestCaseError> {
    let got = read_all(log)?;
    prop_assert!(
        got.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets increase"
    );
    prop_assert_eq!(got.len(), model.len());
    for (g, w) in got.iter().zip(model) {
        prop_assert_eq!(g, w);
    }
    Ok(())
}

fn run(
    segment_bytes: usize,
    retention_ms: i64,
    min_lag_ms: i64,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p-0");
    let clock = ManualClock::new(T0);
    let config = LogConfig::default()
        .with_overrides([
            ("cleanup.policy", "compact"),
            ("segment.bytes", segment_bytes.to_string().as_str()),
            ("index.interval.bytes", "128"),
            ("delete.retention.ms", retention_ms.to_string().as_str()),
            ("min.compaction.lag.ms", min_lag_ms.to_string().as_str()),
        ])
        .unwrap();
    let mut log = Some(open(&dir, &config, &clock, true));
    let mut model: Vec<Rec> = Vec::new();
    let mut history: Vec<Rec> = Vec::new();
    let mut seq = 0u64;
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append { records, gzip } => {
                let ts = clock.now_ms();
                let codec = if gzip {
                    Compression::Gzip
                } else {
                    Compression::None
                };
                let mut b = BatchBuilder::new(codec, ts);
                let mut recs = Vec::new();
                for (i, (k, tombstone, len)) in records.iter().enumerate() {
                    seq += 1;
                    let key = Bytes::from(format!("key-{k}"));
                    let value = (!tombstone).then(|| {
                        let mut v = format!("{seq}:").into_bytes();
                        v.resize(v.len() + len, b'v');
                        Bytes::from(v)
                    });
                    let r = Record::new(Some(key.to_vec()), value.as_ref().map(|v| v.to_vec()))
                        .with_timestamp(ts + i as i64);
                    b.push(r);
                    recs.push((key, value, ts + i as i64));
                }
                let info = l.append_as_leader(&b.build().unwrap(), 0).unwrap();
                for (i, (key, value, ts)) in recs.into_iter().enumerate() {
                    let r = Rec {
                        offset: info.first_offset + i as i64,
                        key,
                        value,
                        ts,
                    };
                    model.push(r.clone());
                    history.push(r);
                }
            }
            Op::Roll => l.roll().unwrap(),
            Op::Advance(ms) => clock.advance(ms),
            Op::Compact { shared, small_map } => {
                let now = clock.now_ms();
                let active_base = *l.segment_base_offsets().last().unwrap();
                let cleaner = if small_map {
                    CleanerConfig {
                        dedupe_buffer_size: 200,
                        io_buffer_size: 256,
                    }
                } else {
                    CleanerConfig::default()
                };
                let stats = if shared {
                    let s = Arc::new(RwLock::new(log.take().unwrap()));
                    let stats = compact_shared(&s, now, &cleaner).unwrap();
                    log = Some(Arc::try_unwrap(s).unwrap().into_inner());
                    stats
                } else {
                    l.compact_with(now, &cleaner).unwrap()
                };
                let l = log.as_mut().unwrap();
                prop_assert!(!stats.aborted);
                if stats.did_work() {
                    prop_assert!(stats.end_offset <= active_base);
                    prop_assert!(l.segment_base_offsets().contains(&stats.end_offset));
                    if min_lag_ms == 0 && !small_map {
                        prop_assert_eq!(stats.end_offset, active_base);
                    }
                    prop_assert_eq!(l.first_dirty_offset(), stats.end_offset);
                    model = model_clean(&model, stats.end_offset, now - retention_ms);
                }
                check(l, &model)?;
            }
            Op::Reopen { clean } => {
                let l = log.take().unwrap();
                if clean {
                    l.close().unwrap();
                } else {
                    drop(l); // kill -9: the page cache survives
                }
                log = Some(open(&dir, &config, &clock, clean));
                check(log.as_ref().unwrap(), &model)?;
            }
        }
    }
    let mut l = log.take().unwrap();
    check(&l, &model)?;

    // Final pass over everything, old enough for any min.compaction.lag.ms.
    l.roll().unwrap();
    clock.advance(min_lag_ms + 100);
    let now = clock.now_ms();
    let leo = l.log_end_offset();
    let stats = l.compact(now).unwrap();
    if leo > l.log_start_offset() && !history.is_empty() {
        prop_assert_eq!(stats.end_offset, leo);
    }
    let got = read_all(&l)?;
    // Against the whole history: each key's latest record, at its original offset, exactly
    // once, unless it is a tombstone older than delete.retention.ms; nothing else.
    let mut latest: HashMap<&Bytes, &Rec> = HashMap::new();
    for r in &history {
        latest.insert(&r.key, r);
    }
    let horizon = now - retention_ms;
    let mut want: Vec<&Rec> = latest
        .values()
        .copied()
        .filter(|r| r.value.is_some() || r.ts >= horizon)
        .collect();
    want.sort_by_key(|r| r.offset);
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        prop_assert_eq!(g, w);
    }
    for r in &got {
        prop_assert_eq!(got.iter().filter(|o| o.key == r.key).count(), 1);
    }
    // Time look-ups land on retained records (timestamps never decrease with offsets here).
    for r in &got {
        let found = l.offset_for_timestamp(r.ts).unwrap().unwrap();
        let first = got.iter().find(|o| o.ts >= r.ts).unwrap();
        prop_assert_eq!(found.offset, first.offset);
    }
    let expected = got;
    l.close().unwrap();
    for clean in [true, false] {
        let l = open(&dir, &config, &clock, clean);
        prop_assert_eq!(l.log_end_offset(), leo);
        prop_assert_eq!(read_all(&l)?, expected.clone());
        if clean {
            l.close().unwrap();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_the_latest_value_per_key(
        segment_bytes in 600usize..3000,
        retention_ms in prop_oneof![Just(0i64), 1_000i64..60_000],
        min_lag_ms in prop_oneof![3 => Just(0i64), 1 => 1_000i64..40_000],
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(segment_bytes, retention_ms, min_lag_ms, ops)?;
    }
}
