use std::fmt;

/// A broker or controller node id (`node.id`).
pub type NodeId = i32;
/// A partition leader epoch; `-1` means unknown.
pub type LeaderEpoch = i32;
/// A record offset within a partition.
pub type Offset = i64;

/// A topic name and a partition index: the unit of ordering and storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// Creates a topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses Kafka's directory name form `<topic>-<partition>`.
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        (partition >= 0).then(|| Self::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("my-topic.v2", 12);
        assert_eq!(TopicPartition::parse_dir_name(&tp.to_string()), Some(tp));
        assert_eq!(TopicPartition::parse_dir_name("nodash"), None);
        assert_eq!(TopicPartition::parse_dir_name("-3"), None);
    }
}
