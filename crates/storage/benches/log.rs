//! Append and read throughput of one partition log on a real temporary directory.
//!
//! Batches of 1000 records (100 B and 1 KiB values) are built once with `BatchBuilder`; each
//! append re-uses the same buffer (the log patches base offset and epoch in place, which the
//! CRC does not cover). Old segments are deleted by `retention.bytes` as the benchmark runs so
//! the disk does not fill up. Run with `cargo bench -p fjord-storage`; `cargo test --benches`
//! runs every routine once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fjord_common::{SystemClock, TopicPartition};
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{BatchBuilder, Record};
use fjord_storage::{Log, LogConfig};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RECORDS_PER_BATCH: usize = 1000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn make_batch(records: usize, value_len: usize) -> Vec<u8> {
    let ts = now_ms();
    let mut b = BatchBuilder::new(Compression::None, ts);
    for i in 0..records {
        let key = format!("key-{i:06}").into_bytes();
        b.push(Record::new(
            Some(key),
            Some(vec![(i % 251) as u8; value_len]),
        ));
    }
    b.build()
        .expect("uncompressed batches always build")
        .to_vec()
}

fn config(extra: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides(
            [
                ("segment.bytes", "67108864"),
                ("retention.bytes", "268435456"),
                ("retention.ms", "-1"),
                ("max.message.bytes", "4194304"),
            ]
            .into_iter()
            .chain(extra.iter().copied()),
        )
        .expect("valid bench config")
}

fn open(dir: &std::path::Path, config: LogConfig) -> Log {
    Log::create(
        dir.join("bench-0"),
        TopicPartition::new("bench", 0),
        config,
        Arc::new(SystemClock),
    )
    .expect("open log")
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    type Overrides = &'static [(&'static str, &'static str)];
    let cases: [(&str, usize, Overrides); 3] = [
        ("100B", 100, &[]),
        ("1KB", 1024, &[]),
        ("100B_fsync_each", 100, &[("flush.messages", "1")]),
    ];
    for (name, value_len, extra) in cases {
        let batch = make_batch(RECORDS_PER_BATCH, value_len);
        group.throughput(Throughput::ElementsAndBytes {
            elements: RECORDS_PER_BATCH as u64,
            bytes: batch.len() as u64,
        });
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut log = open(tmp.path(), config(extra));
        let mut until_retention = 256u32;
        group.bench_function(BenchmarkId::new("batch_of_1000", name), |b| {
            b.iter(|| {
                let info = log.append_as_leader(black_box(&batch), 0).expect("append");
                until_retention -= 1;
                if until_retention == 0 {
                    until_retention = 256;
                    log.enforce_retention().expect("retention");
                }
                info.last_offset
            })
        });
        log.delete().expect("delete log");
    }
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for (name, value_len) in [("100B", 100), ("1KB", 1024)] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut log = open(tmp.path(), config(&[]));
        let batch = make_batch(RECORDS_PER_BATCH, value_len);
        let batches = (32 << 20) / batch.len();
        for _ in 0..batches {
            log.append_as_leader(&batch, 0).expect("append");
        }
        let total_bytes = log.size_bytes();
        let end = log.log_end_offset();
        group.throughput(Throughput::ElementsAndBytes {
            elements: end as u64,
            bytes: total_bytes,
        });
        // A consumer fetching 1 MiB at a time from the start to the end: index look-up under
        // the log (here: no lock at all), then one pread per fetch.
        group.bench_function(BenchmarkId::new("sequential_1MiB_fetches", name), |b| {
            b.iter(|| {
                let mut offset = 0;
                let mut bytes = 0usize;
                while offset < end {
                    let r = log.read(offset, 1 << 20, end, true).expect("read");
                    let slice = r.slice.expect("data");
                    bytes += slice.read_bytes().expect("pread").len();
                    offset = r.next_offset;
                }
                assert_eq!(bytes as u64, total_bytes);
                bytes
            })
        });
        log.delete().expect("delete log");
    }
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
