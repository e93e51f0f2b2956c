//! DescribeConfigs, IncrementalAlterConfigs and AlterConfigs for topics and brokers.
//!
//! Precedence, highest first, as Kafka: dynamic topic config, dynamic per-broker config,
//! dynamic cluster-wide broker default, static `server.properties`, built-in default.

use super::{sb, HandlerResult, RequestContext};
use crate::broker::Broker;
use crate::config::{broker_config_def, log_defaults_from, BROKER_CONFIGS};
use fjord_common::ErrorCode;
use fjord_metadata::controller::{self, AlterOp, ApiError};
use fjord_metadata::{ConfigResourceType, MetadataImage};
use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

struct Entry {
    name: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    config_type: i8,
    doc: &'static str,
    synonyms: Vec<(String, Option<String>, i8)>,
}

/// Broker-level layers for a broker key: (value, source) highest first.
fn broker_layers(
    broker: &Broker,
    image: &MetadataImage,
    key: &str,
) -> Vec<(String, Option<String>, i8)> {
    let mut layers = Vec::new();
    let node = image.configs(
        ConfigResourceType::Broker,
        &broker.config.node_id.to_string(),
    );
    let cluster = image.configs(ConfigResourceType::Broker, "");
    if let Some(v) = node.get(key) {
        layers.push((key.to_string(), Some(v.clone()), SOURCE_DYNAMIC_BROKER));
    }
    if let Some(v) = cluster.get(key) {
        layers.push((
            key.to_string(),
            Some(v.clone()),
            SOURCE_DYNAMIC_DEFAULT_BROKER,
        ));
    }
    if let Some(v) = broker.config.given.get(key) {
        layers.push((key.to_string(), Some(v.clone()), SOURCE_STATIC_BROKER));
    }
    if let Some(d) = broker_config_def(key) {
        if let Some(v) = d.default {
            layers.push((key.to_string(), Some(v.to_string()), SOURCE_DEFAULT));
        }
    }
    layers
}

/// DescribeConfigs `config_type` id of a topic config type.
fn topic_config_type(kind: fjord_storage::config::ConfigType) -> i8 {
    use fjord_storage::config::ConfigType;
    match kind {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List => 7,
    }
}

fn topic_entries(broker: &Broker, image: &MetadataImage, topic: &str) -> Vec<Entry> {
    let overrides = image.configs(ConfigResourceType::Topic, topic);
    let effective = broker.topic_log_config(image, topic);
    fjord_storage::config::TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), Some(v.clone()), SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(broker_key) = def.broker_synonym {
                for layer in broker_layers(broker, image, broker_key) {
                    if layer.2 != SOURCE_DEFAULT {
                        synonyms.push(layer);
                    }
                }
            }
            let source = synonyms.first().map(|s| s.2).unwrap_or(SOURCE_DEFAULT);
            Entry {
                name: def.name.to_string(),
                value: effective.value_of(def.name),
                source,
                read_only: false,
                config_type: topic_config_type(def.kind),
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

fn broker_entries(broker: &Broker, image: &MetadataImage) -> Vec<Entry> {
    BROKER_CONFIGS
        .iter()
        .map(|def| {
            let synonyms = broker_layers(broker, image, def.name);
            let (value, source) = synonyms
                .first()
                .map(|s| (s.1.clone(), s.2))
                .unwrap_or((None, SOURCE_DEFAULT));
            Entry {
                name: def.name.to_string(),
                value,
                source,
                read_only: !def.dynamic,
                config_type: def.kind.describe_type(),
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// The `configs` list of a CreateTopics v5+ response.
pub(crate) fn topic_configs_for_create(
    broker: &Arc<Broker>,
    image: &MetadataImage,
    topic: &str,
) -> Vec<CreatableTopicConfigs> {
    topic_entries(broker, image, topic)
        .into_iter()
        .map(|e| {
            let mut c = CreatableTopicConfigs::default();
            c.name = sb(e.name);
            c.value = e.value.map(sb);
            c.read_only = e.read_only;
            c.config_source = e.source;
            c
        })
        .collect()
}

fn check_broker_name(broker: &Broker, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name == broker.config.node_id.to_string() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.config.node_id
            ),
        ))
    }
}

pub(crate) fn describe_configs(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: DescribeConfigsRequest = ctx.decode()?;
    let broker = ctx.broker;
    let image = broker.image();
    let version = ctx.version();
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.error_message = None;
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let entries = match resource.resource_type {
            RESOURCE_TOPIC if image.topic(&name).is_some() => {
                Ok(topic_entries(broker, &image, &name))
            }
            RESOURCE_TOPIC => Err(ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("Topic {name} does not exist"),
            )),
            RESOURCE_BROKER => {
                check_broker_name(broker, &name).map(|_| broker_entries(broker, &image))
            }
            other => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        };
        match entries {
            Ok(entries) => {
                // Null (and, leniently, an empty list) means every key.
                let keys: Option<Vec<String>> = resource
                    .configuration_keys
                    .filter(|k| !k.is_empty())
                    .map(|k| k.iter().map(|s| s.to_string()).collect());
                for e in entries {
                    if keys.as_ref().is_some_and(|k| !k.contains(&e.name)) {
                        continue;
                    }
                    let mut c = DescribeConfigsResourceResult::default();
                    c.name = sb(e.name);
                    c.value = e.value.map(sb);
                    c.read_only = e.read_only;
                    c.config_source = e.source;
                    c.is_sensitive = false;
                    if request.include_synonyms {
                        c.synonyms = e
                            .synonyms
                            .into_iter()
                            .map(|(n, v, s)| {
                                let mut syn = DescribeConfigsSynonym::default();
                                syn.name = sb(n);
                                syn.value = v.map(sb);
                                syn.source = s;
                                syn
                            })
                            .collect();
                    }
                    if version >= 3 {
                        c.config_type = e.config_type;
                        if request.include_documentation {
                            c.documentation = Some(sb(e.doc));
                        }
                    }
                    result.configs.push(c);
                }
            }
            Err(e) => {
                result.error_code = e.code.code();
                result.error_message = Some(sb(e.message));
            }
        }
        response.results.push(result);
    }
    ctx.respond(&response)
}

/// Validation of one key for a resource type.
fn validator(
    broker: &Broker,
    resource_type: ConfigResourceType,
) -> impl Fn(&str, &str) -> Result<(), String> + '_ {
    move |key, value| match resource_type {
        ConfigResourceType::Topic => {
            fjord_storage::config::validate_topic_config(key, value).map_err(|e| e.to_string())
        }
        ConfigResourceType::Broker => {
            let def =
                broker_config_def(key).ok_or_else(|| format!("Unknown broker config {key}"))?;
            if !def.dynamic {
                return Err(format!(
                    "Cannot update these configs dynamically: Set({key})"
                ));
            }
            let mut keys: BTreeMap<String, String> = broker.config.given.clone();
            keys.insert(key.to_string(), value.to_string());
            log_defaults_from(&keys)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

fn alter(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    resource_name: &str,
    ops: Vec<(String, AlterOp, Option<String>)>,
    replace_all: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let broker = ctx.broker;
    let resource = match resource_type {
        RESOURCE_TOPIC => ConfigResourceType::Topic,
        RESOURCE_BROKER => {
            check_broker_name(broker, resource_name)?;
            ConfigResourceType::Broker
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Unsupported resource type {other}"),
            ))
        }
    };
    let validate = validator(broker, resource);
    let result = broker
        .run_controller(|image| {
            controller::alter_configs(
                image,
                resource,
                resource_name,
                &ops,
                replace_all,
                &validate,
                validate_only,
            )
        })
        .and_then(|r| r);
    if result.is_ok() && !validate_only {
        tracing::info!(resource = ?resource, name = resource_name, changes = ops.len(), "configs altered");
    }
    result
}

pub(crate) fn incremental_alter_configs(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: IncrementalAlterConfigsRequest = ctx.decode()?;
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_message = None;
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let ops: Result<Vec<_>, ApiError> = resource
            .configs
            .iter()
            .map(|c| {
                AlterOp::from_id(c.config_operation)
                    .map(|op| {
                        (
                            c.name.to_string(),
                            op,
                            c.value.as_ref().map(|v| v.to_string()),
                        )
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("Unknown operation {}", c.config_operation),
                        )
                    })
            })
            .collect();
        let result = ops.and_then(|ops| {
            alter(
                ctx,
                resource.resource_type,
                resource.resource_name.as_str(),
                ops,
                false,
                request.validate_only,
            )
        });
        if let Err(e) = result {
            r.error_code = e.code.code();
            r.error_message = Some(sb(e.message));
        }
        response.responses.push(r);
    }
    ctx.respond(&response)
}

pub(crate) fn alter_configs(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: AlterConfigsRequest = ctx.decode()?;
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.error_message = None;
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let ops = resource
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), AlterOp::Set, Some(v.to_string())))
            })
            .collect();
        if let Err(e) = alter(
            ctx,
            resource.resource_type,
            resource.resource_name.as_str(),
            ops,
            true,
            request.validate_only,
        ) {
            r.error_code = e.code.code();
            r.error_message = Some(sb(e.message));
        }
        response.responses.push(r);
    }
    ctx.respond(&response)
}
