//! Property test: random appends (plain and idempotent), reads, truncations, rolls,
//! DeleteRecords, flushes and reopens (clean and after a simulated kill -9) against an
//! in-memory model of the log.

// Test helpers outside #[test] functions panic on purpose.
#![allow(clippy::unwrap_used)]

use fjord_common::{ManualClock, TopicPartition};
use fjord_protocol::batch::{set_base_offset, set_partition_leader_epoch, BatchHeader, BatchIter};
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{decode_batch, BatchBuilder, Record};
use fjord_storage::{Log, LogConfig, LogOpenOptions, StorageError};
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        ts_back: i64,
        gzip: bool,
    },
    AppendIdempotent {
        pid: i64,
        records: usize,
    },
    RetryLastIdempotent {
        pid: i64,
    },
    Read {
        at: f64,
        max_bytes: usize,
        exact_batches: usize,
        bound: f64,
        min_one: bool,
    },
    TimestampLookup {
        ts_back: i64,
    },
    Truncate {
        at: f64,
    },
    DeleteRecords {
        at: f64,
    },
    Roll,
    Flush,
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..20, 0usize..300, 0i64..100_000, proptest::bool::weighted(0.15))
            .prop_map(|(records, value_len, ts_back, gzip)| Op::Append { records, value_len, ts_back, gzip }),
        3 => (0i64..2, 1usize..6).prop_map(|(pid, records)| Op::AppendIdempotent { pid, records }),
        1 => (0i64..2).prop_map(|pid| Op::RetryLastIdempotent { pid }),
        4 => (0.0f64..1.0, 0usize..4000, 0usize..4, 0.0f64..1.2, any::<bool>()).prop_map(
            |(at, max_bytes, exact_batches, bound, min_one)| Op::Read { at, max_bytes, exact_batches, bound, min_one }
        ),
        1 => (0i64..120_000).prop_map(|ts_back| Op::TimestampLookup { ts_back }),
        1 => (0.0f64..1.0).prop_map(|at| Op::Truncate { at }),
        1 => (0.0f64..1.0).prop_map(|at| Op::DeleteRecords { at }),
        1 => Just(Op::Roll),
        1 => Just(Op::Flush),
        2 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
    producer: Option<(i64, i32, i32)>, // pid, first seq, last seq
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    fn visible(&self) -> impl Iterator<Item = &ModelBatch> {
        self.batches
            .iter()
            .filter(move |b| b.last >= self.log_start)
    }
    fn offset_at(&self, frac: f64) -> i64 {
        let span = (self.log_end - self.log_start) as f64;
        self.log_start + (span * frac).floor() as i64
    }
    fn last_of(&self, pid: i64) -> Option<&ModelBatch> {
        self.batches
            .iter()
            .rev()
            .find(|b| b.producer.is_some_and(|p| p.0 == pid))
    }
}

fn plain_batch(records: usize, value_len: usize, ts: i64, gzip: bool) -> Vec<u8> {
    let codec = if gzip {
        Compression::Gzip
    } else {
        Compression::None
    };
    let mut b = BatchBuilder::new(codec, ts);
    for i in 0..records {
        let value: Vec<u8> = (0..value_len).map(|j| (i * 31 + j) as u8).collect();
        b.push(
            Record::new(Some(format!("key-{i}").into_bytes()), Some(value))
                .with_timestamp(ts + i as i64),
        );
    }
    b.build().unwrap().to_vec()
}

fn idem_batch(pid: i64, seq: i32, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None, T0).producer(pid, 0, seq);
    for i in 0..records {
        b.push(Record::new(None, Some(vec![i as u8; 10])));
    }
    b.build().unwrap().to_vec()
}

fn open(dir: &Path, config: &LogConfig, clock: &ManualClock, opts: LogOpenOptions) -> Log {
    Log::open(
        dir,
        TopicPartition::new("p", 0),
        config.clone(),
        opts,
        Arc::new(clock.clone()),
    )
    .unwrap()
}

fn read_everything(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let slice = r.slice.expect("data below the log end");
        let bytes = slice.read_bytes().unwrap();
        for item in BatchIter::new(&bytes) {
            let (h, range) = item.unwrap();
            out.push((h.base_offset, bytes[range].to_vec()));
        }
        assert!(r.next_offset > offset);
        offset = r.next_offset;
    }
    out
}

/// A produced batch as the log stores it: with its offset and leader epoch.
fn as_stored(mut batch: Vec<u8>, base: i64, epoch: i32) -> Vec<u8> {
    set_base_offset(&mut batch, base);
    set_partition_leader_epoch(&mut batch, epoch);
    batch
}

fn check_equal(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_start_offset(), model.log_start);
    prop_assert_eq!(log.log_end_offset(), model.log_end);
    prop_assert!(log.recovery_point() <= log.log_end_offset());
    let got = read_everything(log);
    let want: Vec<(i64, Vec<u8>)> = model.visible().map(|b| (b.base, b.bytes.clone())).collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert_eq!(g.0, w.0);
        prop_assert!(g.1 == w.1, "batch at {} differs", g.0);
    }
    Ok(())
}

fn run(config: LogConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p-0");
    let clock = ManualClock::new(T0);
    let opts = LogOpenOptions {
        clean_shutdown: true,
        ..Default::default()
    };
    let mut log = open(&dir, &config, &clock, opts);
    let mut model = Model::default();
    let mut epoch = 0;
    for op in ops {
        match op {
            Op::Append {
                records,
                value_len,
                ts_back,
                gzip,
            } => {
                let b = plain_batch(records, value_len, T0 - ts_back, gzip);
                match log.append_as_leader(&b, epoch) {
                    Ok(info) => {
                        prop_assert_eq!(info.first_offset, model.log_end);
                        prop_assert_eq!(info.last_offset, model.log_end + records as i64 - 1);
                        model.batches.push(ModelBatch {
                            base: info.first_offset,
                            last: info.last_offset,
                            bytes: as_stored(b, info.first_offset, epoch),
                            producer: None,
                        });
                        model.log_end = info.last_offset + 1;
                    }
                    Err(StorageError::BatchLargerThanSegment { .. }) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("append failed: {e}"))),
                }
            }
            Op::AppendIdempotent { pid, records } => {
                let seq = model
                    .last_of(pid)
                    .map_or(0, |b| b.producer.map_or(0, |p| p.2 + 1));
                let b = idem_batch(pid, seq, records);
                let info = log.append_as_leader(&b, epoch).map_err(|e| {
                    TestCaseError::fail(format!("idempotent append pid {pid} seq {seq}: {e}"))
                })?;
                prop_assert!(!info.duplicate);
                prop_assert_eq!(info.first_offset, model.log_end);
                model.batches.push(ModelBatch {
                    base: info.first_offset,
                    last: info.last_offset,
                    bytes: as_stored(b, info.first_offset, epoch),
                    producer: Some((pid, seq, seq + records as i32 - 1)),
                });
                model.log_end = info.last_offset + 1;
            }
            Op::RetryLastIdempotent { pid } => {
                let Some(last) = model.last_of(pid).cloned() else {
                    continue;
                };
                if last.base < model.log_start {
                    continue;
                }
                let (_, first_seq, last_seq) = last.producer.unwrap();
                let b = idem_batch(pid, first_seq, (last_seq - first_seq + 1) as usize);
                let info = log.append_as_leader(&b, epoch).unwrap();
                prop_assert!(
                    info.duplicate,
                    "retry of pid {} seq {} not detected",
                    pid,
                    first_seq
                );
                prop_assert_eq!(
                    (info.first_offset, info.last_offset),
                    (last.base, last.last)
                );
            }
            Op::Read {
                at,
                mut max_bytes,
                exact_batches,
                bound,
                min_one,
            } => {
                if model.log_end == model.log_start {
                    continue;
                }
                let start = model.offset_at(at);
                let max_offset = model.log_start
                    + ((model.log_end - model.log_start) as f64 * bound).ceil() as i64;
                let candidates: Vec<&ModelBatch> =
                    model.visible().filter(|b| b.last >= start).collect();
                if exact_batches > 0 {
                    // A limit that ends exactly on a batch boundary.
                    max_bytes = candidates
                        .iter()
                        .take(exact_batches)
                        .map(|b| b.bytes.len())
                        .sum();
                }
                let r = log.read(start, max_bytes, max_offset, min_one).unwrap();
                let got: Vec<(i64, Vec<u8>)> = match &r.slice {
                    None => Vec::new(),
                    Some(s) => {
                        let bytes = s.read_bytes().unwrap();
                        BatchIter::new(&bytes)
                            .map(|i| {
                                let (h, range) = i.unwrap();
                                (h.base_offset, bytes[range].to_vec())
                            })
                            .collect()
                    }
                };
                // A prefix of the batches from the one holding `start`.
                for (g, w) in got.iter().zip(&candidates) {
                    prop_assert_eq!(g.0, w.base);
                    prop_assert!(g.1 == w.bytes);
                }
                prop_assert!(got.len() <= candidates.len());
                let total: usize = got.iter().map(|g| g.1.len()).sum();
                prop_assert!(total <= max_bytes || (min_one && got.len() == 1));
                for g in &got {
                    let h = BatchHeader::parse(&g.1).unwrap();
                    prop_assert!(h.last_offset() < max_offset);
                }
                let first_fits = candidates.first().is_some_and(|b| b.last < max_offset);
                if first_fits && (min_one || candidates[0].bytes.len() <= max_bytes) {
                    prop_assert!(!got.is_empty(), "read at {} returned nothing", start);
                }
                // Maximal: the next batch did not fit, is beyond the bound, or starts a segment.
                if let (false, Some(next)) = (got.is_empty(), candidates.get(got.len())) {
                    let fits = total + next.bytes.len() <= max_bytes && next.last < max_offset;
                    let starts_segment = log.segment_base_offsets().contains(&next.base);
                    prop_assert!(
                        !fits || starts_segment,
                        "read at {} stopped early before {}",
                        start,
                        next.base
                    );
                }
                if let Some(next) = candidates.get(got.len()) {
                    if !got.is_empty() {
                        prop_assert_eq!(r.next_offset, next.base);
                    }
                } else if !got.is_empty() {
                    prop_assert_eq!(r.next_offset, model.log_end);
                }
            }
            Op::TimestampLookup { ts_back } => {
                let target = T0 - ts_back;
                let want = model.visible().find_map(|b| {
                    decode_batch(&b.bytes)
                        .unwrap()
                        .records
                        .into_iter()
                        .find(|r| r.timestamp >= target && r.offset >= model.log_start)
                });
                let got = log.offset_for_timestamp(target).unwrap();
                prop_assert_eq!(
                    got.map(|t| (t.timestamp, t.offset)),
                    want.map(|r| (r.timestamp, r.offset))
                );
            }
            Op::Truncate { at } => {
                let to = model.offset_at(at);
                log.truncate_to(to).unwrap();
                model.batches.retain(|b| b.last < to);
                model.log_end = model.batches.last().map_or(0, |b| b.last + 1);
                model.log_start = model.log_start.min(model.log_end);
                epoch += 1;
            }
            Op::DeleteRecords { at } => {
                let to = model.offset_at(at);
                log.delete_records_before(to).unwrap();
                model.log_start = model.log_start.max(to);
            }
            Op::Roll => log.roll().unwrap(),
            Op::Flush => {
                log.flush().unwrap();
                prop_assert_eq!(log.recovery_point(), model.log_end);
            }
            Op::Reopen { clean } => {
                let recovery_point = log.recovery_point();
                let log_start_offset = log.log_start_offset();
                if clean {
                    log.close().unwrap();
                } else {
                    drop(log); // kill -9: the page cache keeps every completed write
                }
                let opts = LogOpenOptions {
                    recovery_point,
                    log_start_offset,
                    clean_shutdown: clean,
                    ..Default::default()
                };
                log = open(&dir, &config, &clock, opts);
            }
        }
        check_equal(&log, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        segment_bytes in 300i32..4000,
        index_interval in 0i32..1200,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let config = LogConfig::default()
            .with_overrides([
                ("segment.bytes", segment_bytes.to_string().as_str()),
                ("index.interval.bytes", index_interval.to_string().as_str()),
            ])
            .unwrap();
        run(config, ops)?;
    }
}
