//! `fjord perf`: throughput and latency tests like `kafka-producer-perf-test`,
//! `kafka-consumer-perf-test` and Kafka's `EndToEndLatency` tool.

use crate::produce::producer_config;
use crate::util::{parse_key_value, CliResult, Connection};
use clap::Subcommand;
use fjord_client::{
    Bytes, Consumer, ConsumerConfig, DeliveryFuture, OffsetReset, Producer, ProducerRecord,
    RecordMetadata, TopicPartition,
};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The `perf` tests.
#[derive(Subcommand, Debug)]
pub(crate) enum PerfCommand {
    /// Produce records as fast as allowed and report throughput and latency.
    Produce {
        #[command(flatten)]
        conn: Connection,
        /// The topic to write to.
        #[arg(long)]
        topic: String,
        /// How many records to send.
        #[arg(long)]
        num_records: u64,
        /// Size of each record's value in bytes.
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Records per second to aim for; -1 for no limit.
        #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
        throughput: f64,
        /// Acknowledgements: all, -1, 1 or 0.
        #[arg(long, default_value = "all")]
        acks: String,
        /// Compression codec: none, gzip, snappy, lz4 or zstd.
        #[arg(long, value_name = "CODEC", default_value = "none")]
        compression: String,
        /// Producer configs, key=value (repeatable, or several after one flag).
        #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
        producer_props: Vec<String>,
    },
    /// Consume records from the beginning and report throughput (timed from the first record).
    Consume {
        #[command(flatten)]
        conn: Connection,
        /// The topic to read.
        #[arg(long)]
        topic: String,
        /// Stop after this many records.
        #[arg(long)]
        num_records: u64,
        /// Give up when no record arrived for this long.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Produce at a fixed rate while a consumer reads the same topic, and report the latency
    /// from `send` to the record arriving in `poll` (produce + replicate + fetch).
    E2e {
        #[command(flatten)]
        conn: Connection,
        /// The topic to write to and read from (it must exist or be auto-created).
        #[arg(long)]
        topic: String,
        /// How many records to send.
        #[arg(long)]
        num_records: u64,
        /// Size of each record's value in bytes (at least 8: the send time travels in it).
        #[arg(long, default_value_t = 100)]
        record_size: usize,
        /// Records per second to send at.
        #[arg(long, default_value_t = 1000.0)]
        throughput: f64,
        /// Acknowledgements: all, -1, 1 or 0.
        #[arg(long, default_value = "all")]
        acks: String,
        /// Compression codec: none, gzip, snappy, lz4 or zstd.
        #[arg(long, value_name = "CODEC", default_value = "none")]
        compression: String,
        /// Producer configs, key=value (repeatable, or several after one flag).
        #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
        producer_props: Vec<String>,
        /// Consumer configs, key=value (repeatable, or several after one flag).
        #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
        consumer_props: Vec<String>,
        /// Give up when no record arrived for this long.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
}

fn progress(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// Latencies above an hour are recorded as an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The outcome of `delivery` if it has completed, without waiting.
fn completed(delivery: &mut DeliveryFuture) -> Option<fjord_client::Result<RecordMetadata>> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(delivery).poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

fn new_histogram() -> CliResult<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

/// Kafka's perf-tool summary of a latency histogram in microseconds, printed in milliseconds.
fn latency_summary(h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
        h.mean() / 1000.0,
        h.max() as f64 / 1000.0,
        ms(0.50),
        ms(0.95),
        ms(0.99),
        ms(0.999),
    )
}

/// The partitions of `topic`, from the cluster's metadata.
async fn partitions_of(conn: &Connection, topic: &str) -> CliResult<Vec<TopicPartition>> {
    let admin = conn.admin()?;
    let described = admin.describe_topics(&[topic]).await?;
    admin.close();
    Ok(described
        .iter()
        .flat_map(|d| {
            d.partitions
                .iter()
                .map(|p| TopicPartition::new(d.name.clone(), p.partition))
        })
        .collect())
}

/// Sends `num_records` at `throughput` records/s, each value starting with the microseconds
/// since `started` at which it was sent, while a consumer positioned at the end of every
/// partition reads them back and records `arrival - send` in a histogram.
#[allow(clippy::too_many_arguments)]
async fn end_to_end(
    conn: Connection,
    topic: String,
    num_records: u64,
    record_size: usize,
    throughput: f64,
    producer: Producer,
    consumer_config: ConsumerConfig,
    timeout_ms: u64,
) -> CliResult {
    if record_size < 8 {
        return Err("--record-size must be at least 8 bytes for perf e2e".into());
    }
    if throughput <= 0.0 {
        return Err("--throughput must be positive for perf e2e".into());
    }
    let partitions = partitions_of(&conn, &topic).await?;
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions").into());
    }
    let mut consumer = Consumer::new(consumer_config)?;
    consumer.assign(&partitions)?;
    consumer.seek_to_end(&partitions)?;
    // Resolve the end offsets now, so that every record sent below is read back.
    for tp in &partitions {
        consumer.position(tp).await?;
    }
    let started = Instant::now();
    let silence = Duration::from_millis(timeout_ms);
    let reader = tokio::spawn(async move {
        let mut histogram = new_histogram()?;
        let mut count = 0u64;
        let mut last = Instant::now();
        while count < num_records {
            let left = silence.saturating_sub(last.elapsed());
            if left.is_zero() {
                break;
            }
            let records = consumer.poll(left.min(Duration::from_millis(100))).await?;
            let arrived = micros(started.elapsed());
            for r in &records {
                let Some(sent) = r
                    .value
                    .as_ref()
                    .and_then(|v| v.get(..8))
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                else {
                    continue;
                };
                let sent = u64::from_be_bytes(sent);
                histogram.saturating_record(arrived.saturating_sub(sent).max(1));
                count += 1;
                last = Instant::now();
            }
        }
        consumer.close().await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((count, histogram))
    });
    let bar = progress(num_records);
    let mut payload = vec![b'x'; record_size];
    let mut deliveries = tokio::task::JoinSet::new();
    for i in 0..num_records {
        let due = started + Duration::from_secs_f64(i as f64 / throughput);
        tokio::time::sleep_until(due.into()).await;
        payload[..8].copy_from_slice(&micros(started.elapsed()).to_be_bytes());
        let delivery = producer
            .send(ProducerRecord::new(topic.clone()).value(Bytes::copy_from_slice(&payload)))
            .await?;
        deliveries.spawn(delivery);
        while let Some(done) = deliveries.try_join_next() {
            done??;
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    while let Some(done) = deliveries.join_next().await {
        done??;
    }
    producer.close().await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (count, histogram) = reader.await?.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{count} records end to end at {:.1} records/sec, {}",
        count as f64 / elapsed,
        latency_summary(&histogram)
    );
    if count < num_records {
        return Err(format!(
            "only {count} of {num_records} records arrived within {timeout_ms} ms of silence"
        )
        .into());
    }
    Ok(())
}

/// The producer of a perf run: `--acks`, `--compression` and `--producer-props key=value`.
fn perf_producer(
    conn: &Connection,
    acks: &str,
    compression: &str,
    props: &[String],
) -> CliResult<Producer> {
    let extra = props
        .iter()
        .map(|p| parse_key_value(p))
        .collect::<CliResult<Vec<_>>>()?;
    Ok(Producer::new(producer_config(
        &conn.bootstrap_server,
        acks,
        compression,
        &extra,
    )?)?)
}

pub(crate) async fn run(cmd: PerfCommand) -> CliResult {
    match cmd {
        PerfCommand::Produce {
            conn,
            topic,
            num_records,
            record_size,
            throughput,
            acks,
            compression,
            producer_props,
        } => {
            let producer = perf_producer(&conn, &acks, &compression, &producer_props)?;
            // Shared by every record (a clone copies no bytes).
            let topic: Arc<str> = topic.into();
            // A fixed payload of printable characters, as the Java tool uses.
            let payload: Bytes = (0..record_size)
                .map(|i| b'A' + (i % 26) as u8)
                .collect::<Vec<u8>>()
                .into();
            let mut histogram = new_histogram()?;
            let bar = progress(num_records);
            let started = Instant::now();
            // Deliveries in send order. Acknowledgements arrive (nearly) in that order, so the
            // completed ones are taken off the front as the run goes, without a task or a lock
            // per record. A record's latency is read when its completion is seen: at most 32
            // sends later (1 when throttled), or after `send` waited for buffer space.
            //
            // Reading the clock costs as much as a small send on some machines, so, like
            // kafka-producer-perf-test, only every `sampling`-th record (at most 500,000 in
            // all) is timed, and one clock read serves all completions seen together.
            let sampling = (num_records / num_records.clamp(1, 500_000)).max(1);
            let mut pending: VecDeque<(Option<Instant>, DeliveryFuture)> = VecDeque::new();
            let mut acknowledged = 0u64;
            for i in 0..num_records {
                if throughput > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / throughput);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = i.is_multiple_of(sampling).then(Instant::now);
                let delivery = producer
                    .send(ProducerRecord::new(topic.clone()).value(payload.clone()))
                    .await?;
                pending.push_back((sent, delivery));
                // Looking costs a lock on the batch's completion: at full speed once per 32
                // sends is enough; a throttled run looks after every send.
                if throughput <= 0.0 && i % 32 != 31 {
                    continue;
                }
                let mut now = None;
                while let Some((sent, front)) = pending.front_mut() {
                    let Some(result) = completed(front) else {
                        break;
                    };
                    result?;
                    if let Some(sent) = sent {
                        let now = *now.get_or_insert_with(Instant::now);
                        histogram.saturating_record(micros(now - *sent).max(1));
                    }
                    pending.pop_front();
                    acknowledged += 1;
                }
                if let Some(b) = &bar {
                    b.set_position(acknowledged);
                }
            }
            for (sent, delivery) in pending {
                delivery.await?;
                if let Some(sent) = sent {
                    histogram.saturating_record(micros(sent.elapsed()).max(1));
                }
            }
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            producer.close().await?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let h = histogram;
            let rate = num_records as f64 / elapsed;
            let mb = rate * record_size as f64 / (1024.0 * 1024.0);
            println!(
                "{num_records} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {}",
                latency_summary(&h)
            );
        }
        PerfCommand::Consume {
            conn,
            topic,
            num_records,
            timeout_ms,
        } => {
            let partitions = partitions_of(&conn, &topic).await?;
            let mut consumer = Consumer::new(
                ConsumerConfig::new(conn.bootstrap_server.clone())
                    .auto_offset_reset(OffsetReset::Earliest)
                    .enable_auto_commit(false),
            )?;
            consumer.assign(&partitions)?;
            let bar = progress(num_records);
            // The clock starts at the first record, as rdkafka_performance's does (and as
            // kafka-consumer-perf-test's fetch.MB.sec leaves out joining): connecting and
            // looking up offsets are not throughput.
            let mut started = None;
            let mut last = Instant::now();
            let (mut count, mut bytes) = (0u64, 0u64);
            while count < num_records {
                let left = Duration::from_millis(timeout_ms).saturating_sub(last.elapsed());
                if left.is_zero() {
                    break;
                }
                let records = consumer.poll(left.min(Duration::from_millis(500))).await?;
                if !records.is_empty() {
                    last = Instant::now();
                    started.get_or_insert(last);
                }
                for r in records {
                    count += 1;
                    bytes += r.value.as_ref().map_or(0, |v| v.len() as u64)
                        + r.key.as_ref().map_or(0, |k| k.len() as u64);
                    if count >= num_records {
                        break;
                    }
                }
                if let Some(b) = &bar {
                    b.set_position(count);
                }
            }
            let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
            consumer.close().await?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let mb = bytes as f64 / (1024.0 * 1024.0);
            println!("data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, elapsed.sec");
            println!(
                "{mb:.4}, {:.4}, {count}, {:.4}, {elapsed:.3}",
                mb / elapsed,
                count as f64 / elapsed
            );
            if count < num_records {
                return Err(format!(
                    "only {count} of {num_records} records arrived within {timeout_ms} ms of silence"
                )
                .into());
            }
        }
        PerfCommand::E2e {
            conn,
            topic,
            num_records,
            record_size,
            throughput,
            acks,
            compression,
            producer_props,
            consumer_props,
            timeout_ms,
        } => {
            let producer = perf_producer(&conn, &acks, &compression, &producer_props)?;
            let mut consumer_config = ConsumerConfig::new(conn.bootstrap_server.clone())
                .auto_offset_reset(OffsetReset::Latest)
                .enable_auto_commit(false);
            for p in &consumer_props {
                let (k, v) = parse_key_value(p)?;
                consumer_config = consumer_config.set(&k, v)?;
            }
            end_to_end(
                conn,
                topic,
                num_records,
                record_size,
                throughput,
                producer,
                consumer_config,
                timeout_ms,
            )
            .await?;
        }
    }
    Ok(())
}
