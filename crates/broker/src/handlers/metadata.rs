//! Metadata, with automatic topic creation as Kafka does it.

use super::{sb, HandlerResult, RequestContext};
use crate::broker::OFFSETS_TOPIC;
use fjord_common::ErrorCode;
use fjord_metadata::controller::{self, CreateTopic, TopicDefaults};
use fjord_metadata::{MetadataImage, Uuid};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::collections::BTreeMap;

pub(crate) async fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: MetadataRequest = ctx.decode()?;
    let version = ctx.version();
    let broker = ctx.broker;
    let image = broker.image();

    // Which topics: all (null list, or an empty list before v1), or the named ones.
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let mut names: Vec<Result<String, Uuid>> = Vec::new();
    if all {
        names.extend(image.topics().map(|t| Ok(t.name.clone())));
    } else if let Some(topics) = &request.topics {
        for t in topics {
            match &t.name {
                Some(n) => names.push(Ok(n.to_string())),
                None => names.push(Err(t.topic_id)),
            }
        }
    }

    let allow_auto_create = broker.config.auto_create_topics_enable
        && (version < 4 || request.allow_auto_topic_creation);
    let mut create_errors: BTreeMap<String, ErrorCode> = BTreeMap::new();
    if !all && allow_auto_create {
        let missing: Vec<String> = names
            .iter()
            .filter_map(|n| n.as_ref().ok())
            .filter(|n| image.topic(n).is_none() && n.as_str() != OFFSETS_TOPIC)
            .filter(|n| controller::validate_topic_name(n).is_ok())
            .cloned()
            .collect();
        if !missing.is_empty() {
            let defaults = TopicDefaults {
                num_partitions: broker.config.num_partitions,
                replication_factor: broker.config.default_replication_factor,
            };
            let brokers = broker.live_brokers();
            let requests: Vec<CreateTopic> = missing.iter().map(CreateTopic::new).collect();
            let outcome = broker.run_controller(|image| {
                controller::create_topics(
                    image,
                    &brokers,
                    &defaults,
                    &|_, _| Ok(()),
                    requests,
                    false,
                )
            });
            match outcome {
                Ok(results) => {
                    for (name, result) in results {
                        match result {
                            Ok(_) => {
                                tracing::info!(topic = %name, client = %ctx.client_id(), "auto-created topic")
                            }
                            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
                            Err(e) => {
                                tracing::warn!(topic = %name, error = %e.message, "auto-create failed");
                                create_errors.insert(name, e.code);
                            }
                        }
                    }
                }
                Err(e) => {
                    for name in missing {
                        create_errors.insert(name, e.code);
                    }
                }
            }
        }
    }
    let image = broker.image();

    let mut response = MetadataResponse::default();
    let (host, port) = broker.advertised_endpoint();
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(broker.config.node_id);
    b.host = sb(host);
    b.port = port;
    response.brokers.push(b);
    if version >= 2 {
        response.cluster_id = Some(sb(broker.cluster_id.clone()));
    }
    if version >= 1 {
        response.controller_id = BrokerId(broker.config.node_id);
    }
    response.cluster_authorized_operations =
        if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            super::CLUSTER_OPERATIONS
        } else {
            super::OPERATIONS_NOT_REQUESTED
        };
    for name in names {
        let mut topic = describe_topic(&image, name, &create_errors, allow_auto_create, version);
        if version >= 8 && request.include_topic_authorized_operations && topic.error_code == 0 {
            topic.topic_authorized_operations = super::TOPIC_OPERATIONS;
        }
        response.topics.push(topic);
    }
    ctx.respond(&response)
}

fn describe_topic(
    image: &MetadataImage,
    name: Result<String, Uuid>,
    create_errors: &BTreeMap<String, ErrorCode>,
    allow_auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.topic_authorized_operations = super::OPERATIONS_NOT_REQUESTED;
    let topic = match &name {
        Ok(n) => {
            t.name = Some(TopicName(sb(n.clone())));
            image.topic(n)
        }
        Err(id) => {
            t.topic_id = *id;
            image.topic_by_id(id)
        }
    };
    let Some(topic) = topic else {
        t.error_code = match &name {
            Ok(n) if controller::validate_topic_name(n).is_err() => {
                ErrorCode::InvalidTopicException
            }
            Ok(n) => match create_errors.get(n) {
                Some(code) => *code,
                None if allow_auto_create && n != OFFSETS_TOPIC => ErrorCode::LeaderNotAvailable,
                None => ErrorCode::UnknownTopicOrPartition,
            },
            Err(_) => ErrorCode::UnknownTopicId,
        }
        .code();
        return t;
    };
    t.name = Some(TopicName(sb(topic.name.clone())));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.is_internal = version >= 1 && topic.name == OFFSETS_TOPIC;
    for (index, p) in topic.partitions.iter().enumerate() {
        let mut mp = MetadataResponsePartition::default();
        mp.partition_index = index as i32;
        mp.leader_id = BrokerId(p.leader);
        if version >= 7 {
            mp.leader_epoch = p.leader_epoch;
        }
        mp.replica_nodes = p.replicas.iter().map(|r| BrokerId(*r)).collect();
        mp.isr_nodes = p.isr.iter().map(|r| BrokerId(*r)).collect();
        if p.leader < 0 {
            mp.error_code = ErrorCode::LeaderNotAvailable.code();
        }
        t.partitions.push(mp);
    }
    t
}
