//! Throughput of one log cleaner pass: a log of 16 MiB of keyed 100-byte records (10 000 keys,
//! so most records are superseded) in 1 MiB segments, cleaned from scratch. Each sample builds a
//! fresh log outside the measurement. Run with `cargo bench -p fjord-storage --bench compaction`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fjord_common::{SystemClock, TopicPartition};
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{BatchBuilder, Record};
use fjord_storage::{Log, LogConfig};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LOG_BYTES: usize = 16 << 20;
const KEYS: usize = 10_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn build_log(dir: &std::path::Path, codec: Compression) -> Log {
    let config = LogConfig::default()
        .with_overrides([("cleanup.policy", "compact"), ("segment.bytes", "1048576")])
        .expect("valid bench config");
    let mut log = Log::create(
        dir.join("compact-0"),
        TopicPartition::new("compact", 0),
        config,
        Arc::new(SystemClock),
    )
    .expect("open log");
    let mut n = 0usize;
    while (log.size_bytes() as usize) < LOG_BYTES {
        let mut b = BatchBuilder::new(codec, now_ms());
        for _ in 0..100 {
            let key = format!("key-{:05}", (n * 7919) % KEYS).into_bytes();
            b.push(Record::new(Some(key), Some(vec![(n % 251) as u8; 100])));
            n += 1;
        }
        let batch = b.build().expect("batch").to_vec();
        log.append_as_leader(&batch, 0).expect("append");
    }
    log.roll().expect("roll");
    log
}

fn bench_compact(c: &mut Criterion) {
    let mut group = c.benchmark_group("compact");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .sample_size(10)
        .throughput(Throughput::Bytes(LOG_BYTES as u64));
    for (name, codec) in [
        ("16MiB_100B_none", Compression::None),
        ("16MiB_100B_gzip", Compression::Gzip),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let tmp = tempfile::tempdir().expect("temp dir");
                    let log = build_log(tmp.path(), codec);
                    (tmp, log)
                },
                |(tmp, mut log)| {
                    let stats = log.compact(now_ms()).expect("compact");
                    assert!(stats.records_retained <= KEYS as u64);
                    (tmp, log)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compact);
criterion_main!(benches);
