//! The broker's view of a partition it leads.

use fjord_common::TopicPartition;
use fjord_storage::SharedLog;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// A partition hosted by this broker.
pub(crate) struct Partition {
    pub(crate) tp: TopicPartition,
    pub(crate) log: SharedLog,
    leader_epoch: AtomicI32,
    /// Offsets below this are visible to consumers. With a single replica it follows the log
    /// end offset; with replication it will be the minimum log end offset of the ISR.
    high_watermark: AtomicI64,
    /// Woken after every append so that waiting fetches re-read at once.
    pub(crate) data_arrived: Notify,
}

impl Partition {
    pub(crate) fn new(tp: TopicPartition, log: SharedLog, leader_epoch: i32) -> Self {
        let leo = log.read().log_end_offset();
        Partition {
            tp,
            log,
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: AtomicI64::new(leo),
            data_arrived: Notify::new(),
        }
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub(crate) fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Moves the high watermark (never backwards) and wakes waiting fetches.
    pub(crate) fn advance_high_watermark(&self, offset: i64) {
        self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        self.data_arrived.notify_waiters();
    }

    /// Resets the high watermark after a truncation or log-start move.
    pub(crate) fn reset_high_watermark(&self, offset: i64) {
        self.high_watermark.store(offset, Ordering::Release);
        self.data_arrived.notify_waiters();
    }

    /// Checks a client's `current_leader_epoch` (-1 = not checked), as KIP-320.
    pub(crate) fn check_leader_epoch(&self, requested: i32) -> Result<(), fjord_common::ErrorCode> {
        let current = self.leader_epoch();
        if requested < 0 || requested == current {
            Ok(())
        } else if requested < current {
            Err(fjord_common::ErrorCode::FencedLeaderEpoch)
        } else {
            Err(fjord_common::ErrorCode::UnknownLeaderEpoch)
        }
    }
}

/// Every partition this broker hosts, looked up by topic name without allocating.
#[derive(Default)]
pub(crate) struct PartitionTable {
    topics: RwLock<HashMap<String, Vec<Arc<Partition>>>>,
}

impl PartitionTable {
    pub(crate) fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let topics = self.topics.read();
        let index = usize::try_from(partition).ok()?;
        topics.get(topic)?.get(index).cloned()
    }

    pub(crate) fn topic(&self, topic: &str) -> Vec<Arc<Partition>> {
        self.topics.read().get(topic).cloned().unwrap_or_default()
    }

    pub(crate) fn insert(&self, partition: Arc<Partition>) {
        let mut topics = self.topics.write();
        let list = topics.entry(partition.tp.topic.clone()).or_default();
        let index = partition.tp.partition as usize;
        if index < list.len() {
            list[index] = partition;
        } else if index == list.len() {
            list.push(partition);
        } else {
            tracing::error!(tp = %partition.tp, "partition inserted out of order");
        }
    }

    pub(crate) fn remove_topic(&self, topic: &str) -> Vec<Arc<Partition>> {
        self.topics.write().remove(topic).unwrap_or_default()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Partition>> {
        self.topics.read().values().flatten().cloned().collect()
    }
}
