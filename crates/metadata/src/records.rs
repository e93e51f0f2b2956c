use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which kind of resource a config record belongs to (Kafka's ConfigResource.Type ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResourceType {
    /// A topic (`2` on the wire).
    Topic,
    /// A broker, or all brokers when the name is empty (`4` on the wire).
    Broker,
}

/// One change to cluster metadata, mirroring KRaft's record types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic came into existence.
    Topic {
        /// Topic name.
        name: String,
        /// Topic id.
        topic_id: Uuid,
    },
    /// A partition was created (or fully re-described).
    Partition {
        /// Owning topic.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// Replica node ids, preferred leader first.
        replicas: Vec<i32>,
        /// In-sync replicas.
        isr: Vec<i32>,
        /// Current leader, `-1` if none.
        leader: i32,
        /// Leader epoch.
        leader_epoch: i32,
        /// Bumped on every change to the partition.
        partition_epoch: i32,
    },
    /// A topic and all its partitions and configs were removed.
    RemoveTopic {
        /// The topic.
        topic_id: Uuid,
    },
    /// A dynamic config was set (`Some`) or removed (`None`).
    Config {
        /// Resource type.
        resource_type: ConfigResourceType,
        /// Topic name, broker id, or empty for the cluster-wide broker default.
        resource_name: String,
        /// Config key.
        name: String,
        /// New value, or `None` to delete.
        value: Option<String>,
    },
    /// A block of producer ids was handed out; ids below `next_producer_id` are taken.
    ProducerIds {
        /// The broker that got the block.
        node_id: i32,
        /// First id not yet handed out.
        next_producer_id: i64,
    },
}
