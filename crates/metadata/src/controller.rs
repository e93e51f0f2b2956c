//! Pure controller logic: `(image, request) -> (records, response)`.
//!
//! Nothing here touches disk or the network and nothing mutates the image: callers make the
//! returned records durable and then replay them. A request that fails produces no records.

use crate::image::MetadataImage;
use crate::records::{ConfigResourceType, MetadataRecord};
use fjord_common::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Size of the producer-id block a broker takes at a time.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Longest legal topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Records to commit and the answer to give once they are committed.
#[derive(Debug, Clone)]
pub struct ControllerResult<T> {
    /// Records to append, atomically, in order.
    pub records: Vec<MetadataRecord>,
    /// The response.
    pub response: T,
}

/// A failed item: Kafka error code plus a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code returned to the client.
    pub code: ErrorCode,
    /// The message returned to the client (where the API has a field for it) and logged.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Broker defaults applied when a request says `-1`.
#[derive(Debug, Clone, Copy)]
pub struct TopicDefaults {
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub replication_factor: i16,
}

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, Default)]
pub struct CreateTopic {
    /// Name.
    pub name: String,
    /// Partition count, `-1` for the default.
    pub num_partitions: i32,
    /// Replication factor, `-1` for the default.
    pub replication_factor: i16,
    /// Manual assignment: replicas per partition index (then counts must be `-1`).
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

impl CreateTopic {
    /// A topic with default partitions and replication and no configs.
    pub fn new(name: impl Into<String>) -> Self {
        CreateTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        }
    }
}

/// What CreateTopics reports for a created (or validated) topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Name.
    pub name: String,
    /// New id.
    pub topic_id: Uuid,
    /// Partition count.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// Validates a topic name as Kafka's `Topic.validate` does.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: String| Err(ApiError::new(ErrorCode::InvalidTopicException, why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// Spreads replicas round-robin over `brokers`, starting at `start` so leaders are balanced.
pub fn assign_replicas(
    brokers: &[i32],
    partitions: std::ops::Range<i32>,
    rf: usize,
    start: usize,
) -> Vec<Vec<i32>> {
    partitions
        .map(|p| {
            (0..rf)
                .map(|i| brokers[(start + p as usize + i) % brokers.len()])
                .collect()
        })
        .collect()
}

/// CreateTopics.
pub fn create_topics(
    image: &MetadataImage,
    brokers: &[i32],
    defaults: &TopicDefaults,
    validate_config: &dyn Fn(&str, &str) -> Result<(), String>,
    topics: Vec<CreateTopic>,
    validate_only: bool,
) -> ControllerResult<Vec<(String, Result<CreatedTopic, ApiError>)>> {
    let mut records = Vec::new();
    let mut response = Vec::new();
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<String> = {
        let mut names = BTreeSet::new();
        topics
            .iter()
            .filter(|t| !names.insert(t.name.clone()))
            .map(|t| t.name.clone())
            .collect()
    };
    let existing_keys: BTreeSet<String> = image.topics().map(|t| collision_key(&t.name)).collect();
    for topic in topics {
        let name = topic.name.clone();
        if duplicates.contains(&name) {
            if seen.insert(name.clone()) {
                response.push((
                    name.clone(),
                    Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("Found multiple entries for topic {name}"),
                    )),
                ));
            }
            continue;
        }
        let result = plan_topic(
            image,
            brokers,
            defaults,
            validate_config,
            &topic,
            &existing_keys,
        );
        match result {
            Ok((created, topic_records)) => {
                if !validate_only {
                    records.extend(topic_records);
                }
                response.push((name, Ok(created)));
            }
            Err(e) => response.push((name, Err(e))),
        }
    }
    ControllerResult { records, response }
}

fn plan_topic(
    image: &MetadataImage,
    brokers: &[i32],
    defaults: &TopicDefaults,
    validate_config: &dyn Fn(&str, &str) -> Result<(), String>,
    topic: &CreateTopic,
    existing_keys: &BTreeSet<String>,
) -> Result<(CreatedTopic, Vec<MetadataRecord>), ApiError> {
    validate_topic_name(&topic.name)?;
    if image.topic(&topic.name).is_some() {
        return Err(ApiError::new(
            ErrorCode::TopicAlreadyExists,
            format!("Topic '{}' already exists.", topic.name),
        ));
    }
    if existing_keys.contains(&collision_key(&topic.name)) {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!(
                "Topic '{}' collides with an existing topic: topics with a period ('.') or underscore ('_') could collide",
                topic.name
            ),
        ));
    }
    for (key, value) in &topic.configs {
        validate_config(key, value)
            .map_err(|reason| ApiError::new(ErrorCode::InvalidConfig, reason))?;
    }
    let replicas: Vec<Vec<i32>> = if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        let mut out = Vec::new();
        for (i, (index, nodes)) in topic.assignments.iter().enumerate() {
            if *index != i as i32 {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "Partitions must be numbered 0..n without gaps",
                ));
            }
            let unique: BTreeSet<_> = nodes.iter().collect();
            if nodes.is_empty()
                || unique.len() != nodes.len()
                || nodes.iter().any(|n| !brokers.contains(n))
            {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!("Invalid replica assignment {nodes:?} for partition {index}: replicas must be distinct live brokers"),
                ));
            }
            out.push(nodes.clone());
        }
        out
    } else {
        let partitions = if topic.num_partitions == -1 {
            defaults.num_partitions
        } else {
            topic.num_partitions
        };
        let rf = if topic.replication_factor == -1 {
            defaults.replication_factor
        } else {
            topic.replication_factor
        };
        if partitions <= 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        if rf <= 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        if rf as usize > brokers.len() {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", brokers.len()),
            ));
        }
        let start = (image.topics().count()) % brokers.len().max(1);
        assign_replicas(brokers, 0..partitions, rf as usize, start)
    };
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id,
    }];
    for (p, nodes) in replicas.iter().enumerate() {
        records.push(MetadataRecord::Partition {
            topic_id,
            partition: p as i32,
            replicas: nodes.clone(),
            isr: nodes.clone(),
            leader: nodes[0],
            leader_epoch: 0,
            partition_epoch: 0,
        });
    }
    for (key, value) in &topic.configs {
        records.push(MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: topic.name.clone(),
            name: key.clone(),
            value: Some(value.clone()),
        });
    }
    Ok((
        CreatedTopic {
            name: topic.name.clone(),
            topic_id,
            num_partitions: replicas.len() as i32,
            replication_factor: replicas.first().map_or(0, |r| r.len() as i16),
        },
        records,
    ))
}

/// DeleteTopics by name.
pub fn delete_topics(
    image: &MetadataImage,
    names: &[String],
) -> ControllerResult<Vec<(String, Result<Uuid, ApiError>)>> {
    let mut records = Vec::new();
    let mut response = Vec::new();
    let mut done = BTreeSet::new();
    for name in names {
        match image.topic(name) {
            Some(topic) if done.insert(topic.id) => {
                records.push(MetadataRecord::RemoveTopic { topic_id: topic.id });
                response.push((name.clone(), Ok(topic.id)));
            }
            Some(topic) => response.push((name.clone(), Ok(topic.id))),
            None => response.push((
                name.clone(),
                Err(ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.",
                )),
            )),
        }
    }
    ControllerResult { records, response }
}

/// CreatePartitions: grow `topic` to `count` partitions.
pub fn create_partitions(
    image: &MetadataImage,
    brokers: &[i32],
    topic: &str,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> ControllerResult<Result<(), ApiError>> {
    let fail = |e| ControllerResult {
        records: Vec::new(),
        response: Err(e),
    };
    let Some(image_topic) = image.topic(topic) else {
        return fail(ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("The topic '{topic}' does not exist."),
        ));
    };
    let current = image_topic.partitions.len() as i32;
    if count < current {
        return fail(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!("The topic {topic} currently has {current} partition(s); {count} would not be an increase."),
        ));
    }
    if count == current {
        return fail(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    let rf = image_topic
        .partitions
        .first()
        .map_or(1, |p| p.replicas.len());
    let new_replicas = match assignments {
        Some(a) => {
            if a.len() as i32 != count - current {
                return fail(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!("Attempted to add {} additional partition(s), but only {} assignment(s) were specified.", count - current, a.len()),
                ));
            }
            if a.iter()
                .any(|r| r.is_empty() || r.iter().any(|n| !brokers.contains(n)))
            {
                return fail(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "Replica assignment names unknown brokers",
                ));
            }
            a
        }
        None => assign_replicas(brokers, current..count, rf.min(brokers.len()).max(1), 0),
    };
    let records = if validate_only {
        Vec::new()
    } else {
        new_replicas
            .into_iter()
            .enumerate()
            .map(|(i, nodes)| MetadataRecord::Partition {
                topic_id: image_topic.id,
                partition: current + i as i32,
                isr: nodes.clone(),
                leader: nodes[0],
                replicas: nodes,
                leader_epoch: 0,
                partition_epoch: 0,
            })
            .collect()
    };
    ControllerResult {
        records,
        response: Ok(()),
    }
}

/// One operation of IncrementalAlterConfigs (Kafka's op ids 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    /// Set the value.
    Set,
    /// Remove the dynamic value (back to the default).
    Delete,
    /// Add to a list value.
    Append,
    /// Remove from a list value.
    Subtract,
}

impl AlterOp {
    /// From the wire id.
    pub fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => AlterOp::Set,
            1 => AlterOp::Delete,
            2 => AlterOp::Append,
            3 => AlterOp::Subtract,
            _ => return None,
        })
    }
}

/// IncrementalAlterConfigs (and, with `replace_all`, the legacy AlterConfigs) for one resource.
pub fn alter_configs(
    image: &MetadataImage,
    resource_type: ConfigResourceType,
    resource_name: &str,
    ops: &[(String, AlterOp, Option<String>)],
    replace_all: bool,
    validate: &dyn Fn(&str, &str) -> Result<(), String>,
    validate_only: bool,
) -> ControllerResult<Result<(), ApiError>> {
    let fail = |e| ControllerResult {
        records: Vec::new(),
        response: Err(e),
    };
    if resource_type == ConfigResourceType::Topic && image.topic(resource_name).is_none() {
        return fail(ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("The topic '{resource_name}' does not exist."),
        ));
    }
    let current = image.configs(resource_type, resource_name);
    let mut next = if replace_all {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for (key, op, value) in ops {
        match op {
            AlterOp::Set => {
                let Some(v) = value else {
                    return fail(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!("Null value not supported for {key}"),
                    ));
                };
                next.insert(key.clone(), v.clone());
            }
            AlterOp::Delete => {
                next.remove(key);
            }
            AlterOp::Append | AlterOp::Subtract => {
                let mut items: Vec<String> = next
                    .get(key)
                    .map(|v| {
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                for item in value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if *op == AlterOp::Append {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(key.clone(), items.join(","));
            }
        }
    }
    for (key, value) in &next {
        if current.get(key) != Some(value) {
            if let Err(reason) = validate(key, value) {
                return fail(ApiError::new(ErrorCode::InvalidConfig, reason));
            }
        }
    }
    let mut records = Vec::new();
    for key in current.keys().filter(|k| !next.contains_key(*k)) {
        records.push(MetadataRecord::Config {
            resource_type,
            resource_name: resource_name.to_string(),
            name: key.clone(),
            value: None,
        });
    }
    for (key, value) in &next {
        if current.get(key) != Some(value) {
            records.push(MetadataRecord::Config {
                resource_type,
                resource_name: resource_name.to_string(),
                name: key.clone(),
                value: Some(value.clone()),
            });
        }
    }
    if validate_only {
        records.clear();
    }
    ControllerResult {
        records,
        response: Ok(()),
    }
}

/// Hands `node_id` the next block of producer ids; the response is the block's first id.
pub fn allocate_producer_ids(image: &MetadataImage, node_id: i32) -> ControllerResult<i64> {
    let start = image.next_producer_id();
    ControllerResult {
        records: vec![MetadataRecord::ProducerIds {
            node_id,
            next_producer_id: start + PRODUCER_ID_BLOCK_SIZE,
        }],
        response: start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        for r in records {
            image.apply(r);
        }
    }

    const DEFAULTS: TopicDefaults = TopicDefaults {
        num_partitions: 2,
        replication_factor: 1,
    };

    #[test]
    fn creates_validates_and_rejects() {
        let mut image = MetadataImage::default();
        let ok = |_: &str, _: &str| Ok(());
        let r = create_topics(
            &image,
            &[1],
            &DEFAULTS,
            &ok,
            vec![CreateTopic::new("a.b")],
            false,
        );
        assert!(r.response[0].1.is_ok());
        apply(&mut image, &r.records);
        assert_eq!(image.topic("a.b").unwrap().partitions.len(), 2);

        let r = create_topics(
            &image,
            &[1],
            &DEFAULTS,
            &ok,
            vec![
                CreateTopic::new("a.b"),
                CreateTopic::new("a_b"),
                CreateTopic::new("bad/name"),
                CreateTopic {
                    replication_factor: 3,
                    ..CreateTopic::new("rf3")
                },
                CreateTopic::new("dup"),
                CreateTopic::new("dup"),
            ],
            false,
        );
        let codes: Vec<_> = r
            .response
            .iter()
            .map(|(_, r)| r.as_ref().err().map(|e| e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                Some(ErrorCode::TopicAlreadyExists),
                Some(ErrorCode::InvalidTopicException),
                Some(ErrorCode::InvalidTopicException),
                Some(ErrorCode::InvalidReplicationFactor),
                Some(ErrorCode::InvalidRequest),
            ]
        );
        assert!(r.records.is_empty());
    }

    #[test]
    fn validate_only_writes_nothing_and_bad_config_fails() {
        let image = MetadataImage::default();
        let r = create_topics(
            &image,
            &[1],
            &DEFAULTS,
            &|_, _| Ok(()),
            vec![CreateTopic::new("t")],
            true,
        );
        assert!(r.response[0].1.is_ok() && r.records.is_empty());
        let mut t = CreateTopic::new("t");
        t.configs.insert("retention.ms".into(), "x".into());
        let r = create_topics(
            &image,
            &[1],
            &DEFAULTS,
            &|k, _| Err(format!("bad {k}")),
            vec![t],
            false,
        );
        assert_eq!(
            r.response[0].1.as_ref().unwrap_err().code,
            ErrorCode::InvalidConfig
        );
    }

    #[test]
    fn delete_grow_and_configs() {
        let mut image = MetadataImage::default();
        let ok = |_: &str, _: &str| Ok(());
        let r = create_topics(
            &image,
            &[1],
            &DEFAULTS,
            &ok,
            vec![CreateTopic::new("t")],
            false,
        );
        apply(&mut image, &r.records);
        let r = create_partitions(&image, &[1], "t", 5, None, false);
        assert!(r.response.is_ok());
        apply(&mut image, &r.records);
        assert_eq!(image.topic("t").unwrap().partitions.len(), 5);
        assert_eq!(
            create_partitions(&image, &[1], "t", 3, None, false)
                .response
                .unwrap_err()
                .code,
            ErrorCode::InvalidPartitions
        );

        let ops = vec![
            (
                "cleanup.policy".to_string(),
                AlterOp::Set,
                Some("delete".to_string()),
            ),
            (
                "cleanup.policy".to_string(),
                AlterOp::Append,
                Some("compact".to_string()),
            ),
        ];
        let r = alter_configs(
            &image,
            ConfigResourceType::Topic,
            "t",
            &ops,
            false,
            &ok,
            false,
        );
        apply(&mut image, &r.records);
        assert_eq!(
            image
                .configs(ConfigResourceType::Topic, "t")
                .get("cleanup.policy")
                .unwrap(),
            "delete,compact"
        );
        let ops = vec![("cleanup.policy".to_string(), AlterOp::Delete, None)];
        let r = alter_configs(
            &image,
            ConfigResourceType::Topic,
            "t",
            &ops,
            false,
            &ok,
            false,
        );
        apply(&mut image, &r.records);
        assert!(image.configs(ConfigResourceType::Topic, "t").is_empty());

        let r = delete_topics(&image, &["t".to_string(), "nope".to_string()]);
        assert!(r.response[0].1.is_ok());
        assert_eq!(
            r.response[1].1.as_ref().unwrap_err().code,
            ErrorCode::UnknownTopicOrPartition
        );
        apply(&mut image, &r.records);
        assert!(image.topic("t").is_none());
    }

    #[test]
    fn producer_id_blocks_do_not_overlap() {
        let mut image = MetadataImage::default();
        let a = allocate_producer_ids(&image, 1);
        apply(&mut image, &a.records);
        let b = allocate_producer_ids(&image, 1);
        assert_eq!(b.response, a.response + PRODUCER_ID_BLOCK_SIZE);
    }

    #[test]
    fn replicas_spread_round_robin() {
        let a = assign_replicas(&[1, 2, 3], 0..3, 2, 0);
        assert_eq!(a, vec![vec![1, 2], vec![2, 3], vec![3, 1]]);
    }
}
