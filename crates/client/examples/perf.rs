//! Producer/consumer throughput against a running broker, for side-by-side comparisons with
//! other clients (e.g. librdkafka's `kcat` or `rdkafka_performance`).
//!
//! ```text
//! cargo run --release -p fjord-client --example perf -- \
//!     [--bootstrap 127.0.0.1:9092] [--topic perf] [--records 1000000] [--size 100] \
//!     [--partitions 1] [--set key=value]... [--consume] [--spawn]
//! ```
//!
//! `--set` passes any producer (or, with `--consume`, consumer) configuration key.

use fjord_client::{
    Admin, AdminConfig, Bytes, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use std::time::{Duration, Instant};

struct Args {
    bootstrap: String,
    topic: String,
    records: usize,
    size: usize,
    partitions: i32,
    sets: Vec<(String, String)>,
    consume: bool,
    spawn: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bootstrap: "127.0.0.1:9092".into(),
        topic: "perf".into(),
        records: 1_000_000,
        size: 100,
        partitions: 1,
        sets: Vec::new(),
        consume: false,
        spawn: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bootstrap" => args.bootstrap = value()?,
            "--topic" => args.topic = value()?,
            "--records" => {
                args.records = value()?.parse().map_err(|e| format!("--records: {e}"))?
            }
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--partitions" => {
                args.partitions = value()?.parse().map_err(|e| format!("--partitions: {e}"))?
            }
            "--set" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--set takes key=value")?;
                args.sets.push((k.to_string(), v.to_string()));
            }
            "--consume" => args.consume = true,
            "--spawn" => args.spawn = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    if args.consume {
        let mut config =
            ConsumerConfig::new(&args.bootstrap).auto_offset_reset(OffsetReset::Earliest);
        for (k, v) in &args.sets {
            config = config.set(k, v.clone())?;
        }
        let mut consumer = Consumer::new(config)?;
        let partitions: Vec<TopicPartition> = (0..args.partitions)
            .map(|p| TopicPartition::new(&args.topic, p))
            .collect();
        consumer.assign(&partitions)?;
        let start = Instant::now();
        let mut got = 0usize;
        let mut idle = 0;
        while got < args.records && idle < 10 {
            let batch = consumer.poll(Duration::from_millis(500)).await?;
            idle = if batch.is_empty() { idle + 1 } else { 0 };
            got += batch.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "consumed {got} records in {secs:.3}s: {:.0} records/s",
            got as f64 / secs
        );
        return Ok(());
    }
    let admin = Admin::new(AdminConfig::new(&args.bootstrap))?;
    if let Err(e) = admin
        .create_topics(&[NewTopic::new(&args.topic, args.partitions)])
        .await
    {
        eprintln!("create topic: {e} (continuing)");
    }
    let mut config = ProducerConfig::new(&args.bootstrap);
    for (k, v) in &args.sets {
        config = config.set(k, v.clone())?;
    }
    let producer = Producer::new(config)?;
    let value = Bytes::from(vec![b'x'; args.size]);
    producer
        .send(ProducerRecord::new(args.topic.as_str()).value(value.clone()))
        .await?
        .await?;
    let start = Instant::now();
    // Produce from the main thread (like rdkafka_performance's application thread), or with
    // `--spawn` from a task on the runtime.
    let run = {
        let (producer, topic, records) = (producer.clone(), args.topic.clone(), args.records);
        async move {
            let mut last = None;
            for _ in 0..records {
                last = Some(
                    producer
                        .send(ProducerRecord::new(topic.as_str()).value(value.clone()))
                        .await?,
                );
            }
            producer.flush().await?;
            if let Some(last) = last {
                last.await?;
            }
            Ok::<(), fjord_client::ClientError>(())
        }
    };
    if args.spawn {
        tokio::spawn(run).await??;
    } else {
        run.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "produced {} x {} B in {secs:.3}s: {:.0} records/s, {:.1} MB/s",
        args.records,
        args.size,
        args.records as f64 / secs,
        (args.records * args.size) as f64 / secs / 1e6
    );
    producer.close().await?;
    Ok(())
}
