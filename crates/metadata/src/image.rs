use crate::records::{ConfigResourceType, MetadataRecord};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// A config resource: type and name.
pub type ConfigResource = (ConfigResourceType, String);

/// One partition as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader node id, `-1` if none.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Partition epoch.
    pub partition_epoch: i32,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<PartitionImage>,
}

/// The state of the cluster obtained by replaying every committed [`MetadataRecord`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicImage>,
    names_by_id: HashMap<Uuid, String>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    next_producer_id: i64,
}

impl MetadataImage {
    /// Replays one record.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                self.names_by_id.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: Vec::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let Some(topic) = self
                    .names_by_id
                    .get(topic_id)
                    .and_then(|n| self.topics.get_mut(n))
                else {
                    tracing::warn!(%topic_id, "partition record for unknown topic ignored");
                    return;
                };
                let image = PartitionImage {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                };
                let index = *partition as usize;
                if index < topic.partitions.len() {
                    topic.partitions[index] = image;
                } else if index == topic.partitions.len() {
                    topic.partitions.push(image);
                } else {
                    tracing::warn!(%topic_id, partition, "partition record out of order ignored");
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                    self.configs.remove(&(ConfigResourceType::Topic, name));
                }
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => {
                let key = (*resource_type, resource_name.clone());
                match value {
                    Some(v) => {
                        self.configs
                            .entry(key)
                            .or_default()
                            .insert(name.clone(), v.clone());
                    }
                    None => {
                        if let Some(map) = self.configs.get_mut(&key) {
                            map.remove(name);
                            if map.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.names_by_id.get(id).and_then(|n| self.topics.get(n))
    }

    /// All topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Dynamic configs of a resource (empty if none).
    pub fn configs(
        &self,
        resource_type: ConfigResourceType,
        name: &str,
    ) -> BTreeMap<String, String> {
        self.configs
            .get(&(resource_type, name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// First producer id not yet handed out to any broker.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }
}
