//! The admin client: topics, partitions, configs, cluster, consumer groups and offsets.
//!
//! Every operation runs until `default.api.timeout.ms`, retrying retriable errors (stale
//! metadata, coordinator moves, timeouts) with back-off, and fails with the first error that
//! will not go away, naming the topic, group or resource.

use crate::cluster::{Cluster, ConnKey};
use crate::config::AdminConfig;
use crate::conn::sb;
use crate::consumer::group::{commit_offsets, fetch_committed, find_coordinator};
use crate::error::{ClientError, Result};
use crate::offsets::{list_offsets, ListedOffset, OffsetSpec};
use fjord_common::{ErrorCode, TopicPartition};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    GroupId, IncrementalAlterConfigsRequest, ListGroupsRequest, TopicName,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (`-1`: the broker's `num.partitions`).
    pub partitions: i32,
    /// Replication factor (`-1`: the broker's `default.replication.factor`).
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, …).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication factor.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, factor: i16) -> Self {
        self.replication_factor = factor;
        self
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// A partition as `describe_topics` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader node id (`-1`: none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
}

/// A topic as `describe_topics` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Topic id (all zeros when the broker has none).
    pub topic_id: String,
    /// Whether it is an internal topic (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions in order.
    pub partitions: Vec<PartitionDescription>,
}

/// A resource whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResource {
    /// A topic.
    Topic(String),
    /// A broker, by node id.
    Broker(i32),
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
}

/// One config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key.
    pub name: String,
    /// Value (`None` for sensitive or unset values).
    pub value: Option<String>,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether the value is a default (not set on the resource).
    pub is_default: bool,
    /// Whether the value is hidden.
    pub sensitive: bool,
}

/// An incremental config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set a value.
    Set(String, String),
    /// Remove the override (back to the default).
    Delete(String),
    /// Append to a list value.
    Append(String, String),
    /// Remove from a list value.
    Subtract(String, String),
}

impl AlterConfigOp {
    fn wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            AlterConfigOp::Set(k, v) => (k, 0, Some(v)),
            AlterConfigOp::Delete(k) => (k, 1, None),
            AlterConfigOp::Append(k, v) => (k, 2, Some(v)),
            AlterConfigOp::Subtract(k, v) => (k, 3, Some(v)),
        };
        let mut c = AlterableConfig::default();
        c.name = sb(name);
        c.config_operation = op;
        c.value = value.map(|v| sb(v));
        c
    }
}

/// A broker in `describe_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Node id.
    pub id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// The cluster as `describe_cluster` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// Controller node id (`-1`: unknown).
    pub controller_id: i32,
    /// Brokers.
    pub brokers: Vec<BrokerDescription>,
}

/// A group in `list_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for consumer groups).
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, …) when the broker reports it.
    pub state: Option<String>,
}

/// A member in `describe_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host.
    pub client_host: String,
    /// Assigned partitions (decoded for consumer groups).
    pub assignment: Vec<TopicPartition>,
}

/// A group in `describe_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State (`Stable`, `Empty`, `Dead`, …).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (assignor).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// An asynchronous admin client.
///
/// ```no_run
/// # async fn demo() -> fjord_client::Result<()> {
/// use fjord_client::{Admin, AdminConfig, NewTopic};
/// let admin = Admin::new(AdminConfig::new("127.0.0.1:9092"))?;
/// admin.create_topics(&[NewTopic::new("events", 6)]).await?;
/// println!("{:?}", admin.list_topics(false).await?);
/// # Ok(()) }
/// ```
pub struct Admin {
    cluster: Arc<Cluster>,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.cluster.close();
    }
}

fn timeout_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

impl Admin {
    /// Creates an admin client (connections are made lazily).
    pub fn new(config: AdminConfig) -> Result<Admin> {
        let (net, timeout) = config.resolve()?;
        Ok(Admin {
            cluster: Cluster::new(net),
            timeout,
        })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// The controller (or any broker when it is unknown), which topic changes go to.
    async fn controller(&self) -> Result<ConnKey> {
        let mut md = self.cluster.metadata();
        if md.fetched_at.is_none() {
            md = self.cluster.refresh().await?;
        }
        if md.controller_id >= 0 && md.brokers.contains_key(&md.controller_id) {
            Ok(ConnKey::Node(md.controller_id))
        } else {
            let conn = self.cluster.any_connection().await?;
            Ok(match conn.node_id() {
                id if id >= 0 => ConnKey::Node(id),
                id => ConnKey::Bootstrap((-1 - id) as usize),
            })
        }
    }

    /// Creates topics; fails on the first topic that could not be created (an existing
    /// topic is `TOPIC_ALREADY_EXISTS`).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let timeout = self.timeout;
        let mut pending: Vec<NewTopic> = topics.to_vec();
        self.cluster
            .retry(self.deadline(), "CreateTopics", || {
                let batch = pending.clone();
                async move {
                    let key = self.controller().await?;
                    let response = self
                        .cluster
                        .send::<CreateTopicsRequest, _>(key, |_| {
                            let mut r = CreateTopicsRequest::default();
                            r.timeout_ms = timeout_ms(timeout);
                            r.topics = batch
                                .iter()
                                .map(|t| {
                                    let mut ct = CreatableTopic::default();
                                    ct.name = TopicName(sb(&t.name));
                                    ct.num_partitions = t.partitions;
                                    ct.replication_factor = t.replication_factor;
                                    ct.configs = t
                                        .configs
                                        .iter()
                                        .map(|(k, v)| {
                                            let mut c = CreatableTopicConfig::default();
                                            c.name = sb(k);
                                            c.value = Some(sb(v));
                                            c
                                        })
                                        .collect();
                                    ct
                                })
                                .collect();
                            Ok(r)
                        })
                        .await?;
                    for t in &response.topics {
                        ClientError::check(
                            t.error_code,
                            t.error_message.as_deref(),
                            format!("create topic {}", t.name.as_str()),
                        )?;
                    }
                    Ok(())
                }
            })
            .await?;
        pending.clear();
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics<S: AsRef<str>>(&self, names: &[S]) -> Result<()> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
        let timeout = self.timeout;
        self.cluster
            .retry(self.deadline(), "DeleteTopics", || async {
                let key = self.controller().await?;
                let response = self
                    .cluster
                    .send::<DeleteTopicsRequest, _>(key, |v| {
                        let mut r = DeleteTopicsRequest::default();
                        r.timeout_ms = timeout_ms(timeout);
                        if v >= 6 {
                            r.topics = names
                                .iter()
                                .map(|n| {
                                    let mut s = DeleteTopicState::default();
                                    s.name = Some(TopicName(sb(n)));
                                    s
                                })
                                .collect();
                        } else {
                            r.topic_names = names.iter().map(|n| TopicName(sb(n))).collect();
                        }
                        Ok(r)
                    })
                    .await?;
                for t in &response.responses {
                    let name = t.name.as_ref().map(|n| n.as_str()).unwrap_or("?");
                    ClientError::check(
                        t.error_code,
                        t.error_message.as_deref(),
                        format!("delete topic {name}"),
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Names of every topic (internal ones only when asked).
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let md = self
            .cluster
            .retry(self.deadline(), "Metadata", || {
                self.cluster.fetch_metadata(None, false)
            })
            .await?;
        let mut names: Vec<String> = md
            .topics
            .values()
            .filter(|t| include_internal || !t.is_internal)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Describes topics (fails with UNKNOWN_TOPIC_OR_PARTITION for a missing one).
    pub async fn describe_topics<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<Vec<TopicDescription>> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
        // Retry while leaders are being elected; a missing topic is final (as in Java).
        let md = self
            .cluster
            .retry(self.deadline(), "Metadata", || async {
                let md = self.cluster.fetch_metadata(Some(&names), false).await?;
                for n in &names {
                    if let Some(t) = md.topics.get(n) {
                        if t.error == ErrorCode::LeaderNotAvailable.code() {
                            return Err(ClientError::kafka(
                                t.error,
                                None,
                                format!("describe topic {n}"),
                            ));
                        }
                    }
                }
                Ok(md)
            })
            .await?;
        for n in &names {
            match md.topics.get(n) {
                Some(t) => ClientError::check(t.error, None, format!("describe topic {n}"))?,
                None => {
                    return Err(ClientError::kafka(
                        ErrorCode::UnknownTopicOrPartition.code(),
                        None,
                        format!("describe topic {n}"),
                    ))
                }
            }
        }
        Ok(names
            .iter()
            .filter_map(|n| md.topics.get(n))
            .map(|t| TopicDescription {
                name: t.name.clone(),
                topic_id: t.topic_id.clone(),
                internal: t.is_internal,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| PartitionDescription {
                        partition: p.partition,
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Grows `topic` to `total` partitions.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let timeout = self.timeout;
        self.cluster
            .retry(self.deadline(), "CreatePartitions", || async {
                let key = self.controller().await?;
                let response = self
                    .cluster
                    .send::<CreatePartitionsRequest, _>(key, |_| {
                        let mut r = CreatePartitionsRequest::default();
                        r.timeout_ms = timeout_ms(timeout);
                        let mut t = CreatePartitionsTopic::default();
                        t.name = TopicName(sb(topic));
                        t.count = total;
                        t.assignments = None;
                        r.topics = vec![t];
                        Ok(r)
                    })
                    .await?;
                for r in &response.results {
                    ClientError::check(
                        r.error_code,
                        r.error_message.as_deref(),
                        format!("create partitions of {}", r.name.as_str()),
                    )?;
                }
                Ok(())
            })
            .await
    }

    fn config_key(&self, resource: &ConfigResource) -> ConnKey {
        match resource {
            ConfigResource::Broker(id) => ConnKey::Node(*id),
            ConfigResource::Topic(_) => ConnKey::Bootstrap(0),
        }
    }

    /// Describes the configs of resources (every key, with defaults).
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<(ConfigResource, Vec<ConfigEntry>)>> {
        let mut out = Vec::new();
        for resource in resources {
            let entries = self
                .cluster
                .retry(self.deadline(), "DescribeConfigs", || async {
                    let build = |_v: i16| {
                        let (kind, name) = resource.wire();
                        let mut r = DescribeConfigsRequest::default();
                        let mut res = DescribeConfigsResource::default();
                        res.resource_type = kind;
                        res.resource_name = sb(&name);
                        res.configuration_keys = None;
                        r.resources = vec![res];
                        Ok(r)
                    };
                    let response = match self.config_key(resource) {
                        ConnKey::Node(id) => {
                            if self.cluster.metadata().brokers.is_empty() {
                                self.cluster.refresh().await?;
                            }
                            self.cluster.send(ConnKey::Node(id), build).await?
                        }
                        _ => self.cluster.send_any(build).await?,
                    };
                    let mut entries = Vec::new();
                    for r in &response.results {
                        ClientError::check(
                            r.error_code,
                            r.error_message.as_deref(),
                            format!("describe configs of {resource:?}"),
                        )?;
                        for c in &r.configs {
                            entries.push(ConfigEntry {
                                name: c.name.to_string(),
                                value: c.value.as_ref().map(|v| v.to_string()),
                                read_only: c.read_only,
                                // ConfigSource 5 = DEFAULT_CONFIG (v1+).
                                is_default: c.config_source == 5,
                                sensitive: c.is_sensitive,
                            });
                        }
                    }
                    Ok(entries)
                })
                .await?;
            out.push((resource.clone(), entries));
        }
        Ok(out)
    }

    /// Applies incremental config changes to one resource.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        self.cluster
            .retry(self.deadline(), "IncrementalAlterConfigs", || async {
                let build = |_v: i16| {
                    let (kind, name) = resource.wire();
                    let mut r = IncrementalAlterConfigsRequest::default();
                    let mut res = AlterConfigsResource::default();
                    res.resource_type = kind;
                    res.resource_name = sb(&name);
                    res.configs = ops.iter().map(AlterConfigOp::wire).collect();
                    r.resources = vec![res];
                    Ok(r)
                };
                let response = match resource {
                    ConfigResource::Broker(id) => {
                        if self.cluster.metadata().brokers.is_empty() {
                            self.cluster.refresh().await?;
                        }
                        self.cluster.send(ConnKey::Node(*id), build).await?
                    }
                    ConfigResource::Topic(_) => {
                        let key = self.controller().await?;
                        self.cluster.send(key, build).await?
                    }
                };
                for r in &response.responses {
                    ClientError::check(
                        r.error_code,
                        r.error_message.as_deref(),
                        format!("alter configs of {resource:?}"),
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Cluster id, controller and brokers (DescribeCluster, else Metadata for old brokers).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.cluster
            .retry(self.deadline(), "DescribeCluster", || async {
                let conn = self.cluster.any_connection().await?;
                if conn
                    .version(kafka_protocol::messages::ApiKey::DescribeCluster)
                    .is_err()
                {
                    let md = self.cluster.fetch_metadata(Some(&[]), false).await?;
                    let mut brokers: Vec<BrokerDescription> = md
                        .brokers
                        .values()
                        .map(|b| BrokerDescription {
                            id: b.id,
                            host: b.host.clone(),
                            port: b.port,
                            rack: b.rack.clone(),
                        })
                        .collect();
                    brokers.sort_by_key(|b| b.id);
                    return Ok(ClusterDescription {
                        cluster_id: md.cluster_id.clone().unwrap_or_default(),
                        controller_id: md.controller_id,
                        brokers,
                    });
                }
                let response = Cluster::send_on::<DescribeClusterRequest, _>(
                    &conn,
                    |_| Ok(DescribeClusterRequest::default()),
                    self.cluster.settings.request_timeout,
                )
                .await?;
                ClientError::check(
                    response.error_code,
                    response.error_message.as_deref(),
                    "DescribeCluster",
                )?;
                let mut brokers: Vec<BrokerDescription> = response
                    .brokers
                    .iter()
                    .map(|b| BrokerDescription {
                        id: *b.broker_id,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    })
                    .collect();
                brokers.sort_by_key(|b| b.id);
                Ok(ClusterDescription {
                    cluster_id: response.cluster_id.to_string(),
                    controller_id: *response.controller_id,
                    brokers,
                })
            })
            .await
    }

    async fn all_brokers(&self) -> Result<Vec<i32>> {
        let md = self.cluster.refresh().await?;
        let mut ids: Vec<i32> = md.brokers.keys().copied().collect();
        ids.sort();
        Ok(ids)
    }

    /// Every group on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.cluster
            .retry(self.deadline(), "ListGroups", || async {
                let mut out = Vec::new();
                for id in self.all_brokers().await? {
                    let response = self
                        .cluster
                        .send::<ListGroupsRequest, _>(ConnKey::Node(id), |_| {
                            Ok(ListGroupsRequest::default())
                        })
                        .await?;
                    ClientError::check(
                        response.error_code,
                        None,
                        format!("ListGroups on node {id}"),
                    )?;
                    for g in &response.groups {
                        out.push(GroupListing {
                            group_id: g.group_id.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: Some(g.group_state.to_string()).filter(|s| !s.is_empty()),
                        });
                    }
                }
                out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
                out.dedup_by(|a, b| a.group_id == b.group_id);
                Ok(out)
            })
            .await
    }

    /// Describes groups (a group that does not exist is reported in state `Dead`).
    pub async fn describe_groups<S: AsRef<str>>(
        &self,
        group_ids: &[S],
    ) -> Result<Vec<GroupDescription>> {
        let mut out = Vec::new();
        for group in group_ids {
            let group = group.as_ref();
            let description = self
                .cluster
                .retry(self.deadline(), "DescribeGroups", || async {
                    let coordinator = find_coordinator(&self.cluster, group).await?;
                    let response = self
                        .cluster
                        .send::<DescribeGroupsRequest, _>(ConnKey::Coordinator(coordinator), |_| {
                            let mut r = DescribeGroupsRequest::default();
                            r.groups = vec![GroupId(sb(group))];
                            Ok(r)
                        })
                        .await?;
                    let g =
                        response.groups.into_iter().next().ok_or_else(|| {
                            ClientError::protocol("empty DescribeGroups response")
                        })?;
                    ClientError::check(
                        g.error_code,
                        g.error_message.as_deref(),
                        format!("describe group {group}"),
                    )?;
                    let consumer = g.protocol_type.as_str() == "consumer";
                    Ok(GroupDescription {
                        group_id: g.group_id.to_string(),
                        state: g.group_state.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        protocol: g.protocol_data.to_string(),
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberDescription {
                                member_id: m.member_id.to_string(),
                                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                                client_id: m.client_id.to_string(),
                                client_host: m.client_host.to_string(),
                                assignment: if consumer {
                                    crate::consumer::group::decode_assignment(m.member_assignment)
                                        .unwrap_or_default()
                                } else {
                                    Vec::new()
                                },
                            })
                            .collect(),
                    })
                })
                .await?;
            out.push(description);
        }
        Ok(out)
    }

    /// Deletes groups (they must be empty: NON_EMPTY_GROUP otherwise).
    pub async fn delete_groups<S: AsRef<str>>(&self, group_ids: &[S]) -> Result<()> {
        for group in group_ids {
            let group = group.as_ref();
            self.cluster
                .retry(self.deadline(), "DeleteGroups", || async {
                    let coordinator = find_coordinator(&self.cluster, group).await?;
                    let response = self
                        .cluster
                        .send::<DeleteGroupsRequest, _>(ConnKey::Coordinator(coordinator), |_| {
                            let mut r = DeleteGroupsRequest::default();
                            r.groups_names = vec![GroupId(sb(group))];
                            Ok(r)
                        })
                        .await?;
                    for r in &response.results {
                        ClientError::check(
                            r.error_code,
                            None,
                            format!("delete group {}", r.group_id.as_str()),
                        )?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    /// Committed offsets of a group (every partition it has committed).
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.cluster
            .retry(self.deadline(), "OffsetFetch", || async {
                let coordinator = find_coordinator(&self.cluster, group).await?;
                let found = fetch_committed(&self.cluster, coordinator, group, None, false).await?;
                Ok(found
                    .into_iter()
                    .filter_map(|(tp, c)| c.map(|c| (tp, c.offset)))
                    .collect())
            })
            .await
    }

    /// Sets a group's committed offsets (the group must have no active members).
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let entries: Vec<(TopicPartition, i64, Option<i32>, Option<String>)> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), *o, None, None))
            .collect();
        self.cluster
            .retry(self.deadline(), "OffsetCommit", || async {
                let coordinator = find_coordinator(&self.cluster, group).await?;
                // Generation -1 and no member id: an admin commit for an empty group.
                for (_, r) in
                    commit_offsets(&self.cluster, coordinator, group, -1, "", None, &entries)
                        .await?
                {
                    r?;
                }
                Ok(())
            })
            .await
    }

    /// Looks up offsets (earliest, latest, or by timestamp) on the partition leaders.
    pub async fn list_offsets(
        &self,
        partitions: &[(TopicPartition, OffsetSpec)],
    ) -> Result<HashMap<TopicPartition, ListedOffset>> {
        let wanted: Vec<(TopicPartition, i64)> = partitions
            .iter()
            .map(|(tp, s)| (tp.clone(), s.wire()))
            .collect();
        self.cluster
            .add_interest(wanted.iter().map(|(tp, _)| tp.topic.as_str()));
        self.cluster.refresh().await?;
        list_offsets(&self.cluster, &wanted, 0, self.deadline()).await
    }

    /// Deletes records before the given offsets (`-1`: up to the high watermark). Returns each
    /// partition's new low watermark.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.cluster
            .add_interest(before.keys().map(|tp| tp.topic.as_str()));
        let timeout = self.timeout;
        self.cluster
            .retry(self.deadline(), "DeleteRecords", || async {
                let md = self.cluster.refresh().await?;
                let mut by_node: BTreeMap<i32, Vec<(&TopicPartition, i64)>> = BTreeMap::new();
                for (tp, offset) in before {
                    let (leader, _) = md.leader(&tp.topic, tp.partition).ok_or_else(|| {
                        ClientError::kafka(
                            ErrorCode::LeaderNotAvailable.code(),
                            None,
                            format!("delete records {tp}"),
                        )
                    })?;
                    by_node.entry(leader).or_default().push((tp, *offset));
                }
                let mut out = BTreeMap::new();
                for (node, parts) in by_node {
                    let response = self
                        .cluster
                        .send::<DeleteRecordsRequest, _>(ConnKey::Node(node), |_| {
                            let mut r = DeleteRecordsRequest::default();
                            r.timeout_ms = timeout_ms(timeout);
                            let mut by_topic: BTreeMap<&str, Vec<DeleteRecordsPartition>> =
                                BTreeMap::new();
                            for (tp, offset) in &parts {
                                let mut p = DeleteRecordsPartition::default();
                                p.partition_index = tp.partition;
                                p.offset = *offset;
                                by_topic.entry(tp.topic.as_str()).or_default().push(p);
                            }
                            r.topics = by_topic
                                .into_iter()
                                .map(|(t, ps)| {
                                    let mut dt = DeleteRecordsTopic::default();
                                    dt.name = TopicName(sb(t));
                                    dt.partitions = ps;
                                    dt
                                })
                                .collect();
                            Ok(r)
                        })
                        .await?;
                    for t in &response.topics {
                        for p in &t.partitions {
                            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                            ClientError::check(p.error_code, None, format!("delete records {tp}"))?;
                            out.insert(tp, p.low_watermark);
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Closes connections.
    pub fn close(&self) {
        self.cluster.close();
    }
}
