//! Produces keyed records and prints where each one landed.
//!
//! ```text
//! cargo run -p fjord-client --example producer -- [bootstrap] [topic] [count]
//! ```
//! Defaults: `127.0.0.1:9092`, `fjord-example`, 10. The topic is created when missing (the
//! broker's `num.partitions`, or 3 partitions through the admin client).

use fjord_client::{
    Acks, Admin, AdminConfig, ClientError, Compression, ErrorCode, NewTopic, Producer,
    ProducerConfig, ProducerRecord,
};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "fjord-example".into());
    let count: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(10);

    let admin = Admin::new(AdminConfig::new(&bootstrap))?;
    match admin.create_topics(&[NewTopic::new(&topic, 3)]).await {
        Ok(()) => println!("created topic {topic}"),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }

    let producer = Producer::new(
        ProducerConfig::new(&bootstrap)
            .acks(Acks::All)
            .compression(Compression::Lz4)
            .linger_ms(5),
    )?;
    // Records share the topic's name: cloning an `Arc<str>` copies no bytes.
    let topic: Arc<str> = topic.into();
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(topic.clone())
            .key(format!("user-{}", i % 4))
            .value(format!("{{\"event\": {i}}}"))
            .header("source", "fjord-client example");
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(md) => println!(
                "{}-{} offset {} (timestamp {})",
                md.topic, md.partition, md.offset, md.timestamp
            ),
            Err(ClientError::Timeout(why)) => eprintln!("not delivered in time: {why}"),
            Err(e) => eprintln!("delivery failed: {e}"),
        }
    }
    producer.close().await?;
    Ok(())
}
