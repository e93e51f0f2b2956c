//! Topic administration, DeleteRecords, InitProducerId, DescribeCluster and SASL stubs.

use super::{sb, HandlerResult, RequestContext};
use crate::errors::storage_error_code;
use fjord_common::ErrorCode;
use fjord_metadata::controller::{self, ApiError, CreateTopic, TopicDefaults};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::*;

fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    fjord_storage::config::validate_topic_config(key, value).map_err(|e| e.to_string())
}

pub(crate) fn create_topics(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: CreateTopicsRequest = ctx.decode()?;
    let broker = ctx.broker;
    let version = ctx.version();
    let defaults = TopicDefaults {
        num_partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
    };
    let mut bad_configs: Vec<CreatableTopicResult> = Vec::new();
    let mut topics = Vec::new();
    for t in &request.topics {
        let mut create = CreateTopic::new(t.name.to_string());
        create.num_partitions = t.num_partitions;
        create.replication_factor = t.replication_factor;
        for a in &t.assignments {
            create.assignments.insert(
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            );
        }
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    create.configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_config = Some(c.name.to_string()),
            }
        }
        if let Some(key) = null_config {
            let mut r = CreatableTopicResult::default();
            r.error_message = None;
            r.name = t.name.clone();
            r.error_code = ErrorCode::InvalidConfig.code();
            r.error_message = Some(sb(format!(
                "Null value not supported for topic configs: {key}"
            )));
            bad_configs.push(r);
            continue;
        }
        topics.push(create);
    }
    let brokers = broker.live_brokers();
    let validate_only = request.validate_only;
    let results = broker.run_controller(|image| {
        controller::create_topics(
            image,
            &brokers,
            &defaults,
            &validate_topic_config,
            topics,
            validate_only,
        )
    });
    let image = broker.image();
    let mut response = CreateTopicsResponse::default();
    response.topics = bad_configs;
    match results {
        Ok(results) => {
            for (name, result) in results {
                let mut r = CreatableTopicResult::default();
                r.error_message = None;
                r.name = TopicName(sb(name.clone()));
                match result {
                    Ok(created) => {
                        tracing::info!(topic = %name, partitions = created.num_partitions, validate_only, "create topic");
                        if version >= 7 {
                            r.topic_id = created.topic_id;
                        }
                        if version >= 5 {
                            r.num_partitions = created.num_partitions;
                            r.replication_factor = created.replication_factor;
                            r.configs = Some(super::configs::topic_configs_for_create(
                                broker, &image, &name,
                            ));
                        }
                    }
                    Err(e) => {
                        r.error_code = e.code.code();
                        r.error_message = Some(sb(e.message));
                    }
                }
                response.topics.push(r);
            }
        }
        Err(e) => {
            for t in &request.topics {
                let mut r = CreatableTopicResult::default();
                r.error_message = None;
                r.name = t.name.clone();
                r.error_code = e.code.code();
                r.error_message = Some(sb(e.message.clone()));
                response.topics.push(r);
            }
        }
    }
    ctx.respond(&response)
}

pub(crate) fn delete_topics(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: DeleteTopicsRequest = ctx.decode()?;
    let broker = ctx.broker;
    let image = broker.image();
    // v6 names topics by name or id; earlier versions by name.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = Vec::new();
    if ctx.version() >= 6 {
        for t in &request.topics {
            wanted.push((t.name.as_ref().map(|n| n.to_string()), t.topic_id));
        }
    } else {
        for n in &request.topic_names {
            wanted.push((Some(n.to_string()), uuid::Uuid::nil()));
        }
    }
    let mut response = DeleteTopicsResponse::default();
    let mut names = Vec::new();
    for (name, id) in &wanted {
        let resolved = match name {
            Some(n) => Some(n.clone()),
            None => image.topic_by_id(id).map(|t| t.name.clone()),
        };
        let mut r = DeletableTopicResult::default();
        r.error_message = None;
        r.name = name.clone().map(|n| TopicName(sb(n)));
        r.topic_id = *id;
        match resolved {
            None => {
                r.error_code = ErrorCode::UnknownTopicId.code();
                response.responses.push(r);
            }
            Some(n) if !broker.config.delete_topic_enable => {
                r.name = Some(TopicName(sb(n)));
                r.error_code = ErrorCode::TopicDeletionDisabled.code();
                response.responses.push(r);
            }
            Some(n) => names.push(n),
        }
    }
    if !names.is_empty() {
        let results = broker.run_controller(|image| controller::delete_topics(image, &names));
        match results {
            Ok(results) => {
                for (name, result) in results {
                    let mut r = DeletableTopicResult::default();
                    r.error_message = None;
                    r.name = Some(TopicName(sb(name.clone())));
                    match result {
                        Ok(id) => {
                            tracing::info!(topic = %name, "delete topic");
                            if ctx.version() >= 6 {
                                r.topic_id = id;
                            }
                        }
                        Err(e) => {
                            r.error_code = e.code.code();
                            if ctx.version() >= 5 {
                                r.error_message = Some(sb(e.message));
                            }
                        }
                    }
                    response.responses.push(r);
                }
            }
            Err(e) => {
                for name in names {
                    let mut r = DeletableTopicResult::default();
                    r.error_message = None;
                    r.name = Some(TopicName(sb(name)));
                    r.error_code = e.code.code();
                    if ctx.version() >= 5 {
                        r.error_message = Some(sb(e.message.clone()));
                    }
                    response.responses.push(r);
                }
            }
        }
    }
    ctx.respond(&response)
}

pub(crate) fn create_partitions(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: CreatePartitionsRequest = ctx.decode()?;
    let broker = ctx.broker;
    let brokers = broker.live_brokers();
    let mut response = CreatePartitionsResponse::default();
    for t in request.topics {
        let name = t.name.to_string();
        let assignments = t.assignments.filter(|a| !a.is_empty()).map(|a| {
            a.into_iter()
                .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let result: Result<(), ApiError> = broker
            .run_controller(|image| {
                controller::create_partitions(
                    image,
                    &brokers,
                    &name,
                    t.count,
                    assignments,
                    request.validate_only,
                )
            })
            .and_then(|r| r);
        let mut r = CreatePartitionsTopicResult::default();
        r.error_message = None;
        r.name = t.name;
        if let Err(e) = result {
            r.error_code = e.code.code();
            r.error_message = Some(sb(e.message));
        } else {
            tracing::info!(topic = %name, count = t.count, "create partitions");
        }
        response.results.push(r);
    }
    ctx.respond(&response)
}

pub(crate) fn delete_records(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: DeleteRecordsRequest = ctx.decode()?;
    let mut response = DeleteRecordsResponse::default();
    for t in request.topics {
        let mut tr = DeleteRecordsTopicResult::default();
        tr.name = t.name.clone();
        for p in t.partitions {
            let mut pr = DeleteRecordsPartitionResult::default();
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            match ctx
                .broker
                .partitions
                .get(t.name.as_str(), p.partition_index)
            {
                None => pr.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(part) => {
                    let hw = part.high_watermark();
                    // -1 means "up to the high watermark".
                    let target = if p.offset == -1 { hw } else { p.offset };
                    let mut log = part.log.write();
                    if target < 0 || target > hw {
                        pr.error_code = ErrorCode::OffsetOutOfRange.code();
                    } else {
                        match log.delete_records_before(target) {
                            Ok(_) => pr.low_watermark = log.log_start_offset(),
                            Err(e) => pr.error_code = storage_error_code(&e).code(),
                        }
                    }
                }
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    ctx.respond(&response)
}

pub(crate) fn init_producer_id(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: InitProducerIdRequest = ctx.decode()?;
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        tracing::warn!(peer = %ctx.peer, "InitProducerId with a transactional id: transactions are not supported yet");
        response.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return ctx.respond(&response);
    }
    // Idempotent producers (including KIP-360 epoch bumps) get a fresh producer id with
    // epoch 0, as Kafka's non-transactional path does.
    match ctx.broker.next_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => response.error_code = e.code.code(),
    }
    ctx.respond(&response)
}

pub(crate) fn describe_cluster(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: DescribeClusterRequest = ctx.decode()?;
    let broker = ctx.broker;
    let mut response = DescribeClusterResponse::default();
    response.error_message = None;
    // Endpoint type 1 = brokers; 2 = controllers (served by brokers in combined mode too).
    if ctx.version() >= 1 {
        response.endpoint_type = request.endpoint_type.max(1);
    }
    response.cluster_id = sb(broker.cluster_id.clone());
    response.controller_id = BrokerId(broker.config.node_id);
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        super::CLUSTER_OPERATIONS
    } else {
        super::OPERATIONS_NOT_REQUESTED
    };
    let (host, port) = broker.advertised_endpoint();
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(broker.config.node_id);
    b.host = sb(host);
    b.port = port;
    response.brokers.push(b);
    ctx.respond(&response)
}

pub(crate) fn sasl_handshake(ctx: &RequestContext<'_>) -> HandlerResult {
    let _request: SaslHandshakeRequest = ctx.decode()?;
    tracing::warn!(peer = %ctx.peer, "SASL handshake refused: no SASL mechanism is enabled");
    let mut response = SaslHandshakeResponse::default();
    response.error_code = ErrorCode::UnsupportedSaslMechanism.code();
    ctx.respond(&response)
}

pub(crate) fn sasl_authenticate(ctx: &RequestContext<'_>) -> HandlerResult {
    let _request: SaslAuthenticateRequest = ctx.decode()?;
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ErrorCode::IllegalSaslState.code();
    response.error_message = Some(sb("SASL is not enabled on this listener"));
    ctx.respond(&response)
}
