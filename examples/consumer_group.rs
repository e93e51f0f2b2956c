//! Joins a consumer group, prints records and the partitions the group hands out; run it in
//! two terminals to watch a rebalance. Stops after `max_idle_polls` empty polls.
//!
//! ```text
//! cargo run -p fjord-client --example consumer_group -- [bootstrap] [topic] [group] [max_idle_polls]
//! ```
//! Defaults: `127.0.0.1:9092`, `fjord-example`, `fjord-example-group`, 20.

use fjord_client::{
    AssignorKind, Consumer, ConsumerConfig, OffsetReset, RebalanceListener, TopicPartition,
};
use std::time::Duration;

struct PrintRebalances;

impl RebalanceListener for PrintRebalances {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        println!("revoked: {partitions:?}");
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        println!("assigned: {partitions:?}");
    }
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        println!("lost: {partitions:?}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "fjord-example".into());
    let group = args.next().unwrap_or_else(|| "fjord-example-group".into());
    let max_idle: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(20);

    let mut consumer = Consumer::new(
        ConsumerConfig::new(&bootstrap)
            .group_id(&group)
            .auto_offset_reset(OffsetReset::Earliest)
            .assignment_strategy(&[AssignorKind::CooperativeSticky])
            .enable_auto_commit(false),
    )?;
    consumer.subscribe(&[topic.as_str()], Some(Box::new(PrintRebalances)))?;
    let mut idle = 0;
    while idle < max_idle {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if records.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for r in &records {
            let value = r
                .value
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            println!(
                "{}-{}@{} key={:?} value={value}",
                r.topic, r.partition, r.offset, r.key
            );
        }
        consumer.commit_sync().await?;
    }
    consumer.close().await?;
    Ok(())
}
