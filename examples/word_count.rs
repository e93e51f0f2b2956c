//! Word count, the classic: counts the words of the lines written to `streams-plaintext-input`
//! and writes every updated count to `streams-wordcount-output`.
//!
//! ```text
//! cargo run -p fjord-streams --example word_count -- [bootstrap] [seconds]
//! ```
//! Defaults: `127.0.0.1:9092`, run until Ctrl-C. The input topic is created when missing and
//! a few sample lines are written to it, so the example shows counts on an empty broker.
//! Write more lines with `fjord produce streams-plaintext-input` (or any Kafka producer) and
//! watch the counts change; run it twice to see two instances share the partitions.

use fjord_client::{
    Admin, AdminConfig, ErrorCode, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use fjord_streams::{KafkaStreams, StreamsBuilder, StreamsConfig};
use std::time::{Duration, Instant};

const INPUT: &str = "streams-plaintext-input";
const OUTPUT: &str = "streams-wordcount-output";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let seconds: Option<u64> = args.next().map(|s| s.parse()).transpose()?;

    let admin = Admin::new(AdminConfig::new(&bootstrap))?;
    for topic in [INPUT, OUTPUT] {
        match admin.create_topics(&[NewTopic::new(topic, 3)]).await {
            Ok(()) => println!("created topic {topic}"),
            Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let producer = Producer::new(ProducerConfig::new(&bootstrap))?;
    for line in [
        "all streams lead to kafka",
        "hello kafka streams",
        "join kafka summit",
    ] {
        producer
            .send(ProducerRecord::new(INPUT).value(line))
            .await?
            .await?;
    }
    producer.close().await?;

    // lines → words → group by word → count → changelog of the counts.
    let builder = StreamsBuilder::new();
    builder
        .stream::<(), String>(INPUT)
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(|_, word| word.clone())
        .count("word-counts")
        .to_stream()
        .peek(|word, count| println!("{word}: {count}"))
        .to(OUTPUT);
    let topology = builder.build()?;
    println!("{}", topology.describe());

    // One state directory per process, so several instances can run on one machine.
    let state_dir = std::env::temp_dir().join(format!("fjord-streams-{}", std::process::id()));
    let config = StreamsConfig::new("wordcount-example", &bootstrap)
        .commit_interval(Duration::from_secs(1))
        .state_dir(state_dir);
    let mut app = KafkaStreams::new(topology, config);
    app.start().await?;
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            break;
        }
    }
    // Interactive query: the counts this instance holds.
    let counts = app.store::<String, i64>("word-counts").all()?;
    println!("final counts on this instance: {counts:?}");
    app.close().await?;
    Ok(())
}
