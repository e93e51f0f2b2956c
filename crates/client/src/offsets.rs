//! ListOffsets against partition leaders (earliest, latest, by timestamp), shared by the
//! consumer (`auto.offset.reset`, `seek_to_*`) and the admin client.

use crate::cluster::{needs_metadata_refresh, Cluster, ConnKey};
use crate::conn::sb;
use crate::error::{ClientError, Result};
use fjord_common::{ErrorCode, TopicPartition};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, TopicName};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// `timestamp` value asking for the log start offset.
pub(crate) const EARLIEST_TIMESTAMP: i64 = -2;
/// `timestamp` value asking for the log end offset (high watermark, or LSO for
/// read_committed).
pub(crate) const LATEST_TIMESTAMP: i64 = -1;

/// What to look up in [`crate::Admin::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset whose timestamp is at or after this one (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    pub(crate) fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// An offset found by ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (`-1` when no record has a timestamp at or after the one asked for).
    pub offset: i64,
    /// The record timestamp for timestamp look-ups, `-1` otherwise.
    pub timestamp: i64,
    /// Leader epoch of the record at `offset`, when known.
    pub leader_epoch: Option<i32>,
}

/// Looks up offsets on each partition's leader, retrying stale-metadata errors until
/// `deadline`.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    wanted: &[(TopicPartition, i64)],
    isolation_level: i8,
    deadline: Instant,
) -> Result<HashMap<TopicPartition, ListedOffset>> {
    let mut out = HashMap::new();
    let mut remaining: Vec<(TopicPartition, i64)> = wanted.to_vec();
    let mut attempt = 0u32;
    cluster.add_interest(wanted.iter().map(|(tp, _)| tp.topic.as_str()));
    while !remaining.is_empty() {
        let md = cluster.metadata();
        let mut by_node: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        let mut last_error: Option<ClientError> = None;
        let mut unknown = Vec::new();
        for (tp, ts) in remaining.drain(..) {
            match md.leader(&tp.topic, tp.partition) {
                Some((leader, _)) => by_node.entry(leader).or_default().push((tp, ts)),
                None => unknown.push((tp, ts)),
            }
        }
        if !unknown.is_empty() {
            let topic_missing = unknown.iter().find(|(tp, _)| {
                md.topics
                    .get(&tp.topic)
                    .is_some_and(|t| t.error == 0 && t.partition(tp.partition).is_none())
            });
            if let Some((tp, _)) = topic_missing {
                return Err(ClientError::kafka(
                    ErrorCode::UnknownTopicOrPartition.code(),
                    None,
                    format!("ListOffsets {tp}"),
                ));
            }
            last_error = Some(ClientError::kafka(
                ErrorCode::LeaderNotAvailable.code(),
                None,
                "ListOffsets: no leader known",
            ));
            remaining.extend(unknown);
        }
        let requests = by_node.into_iter().map(|(node, parts)| async move {
            let result = cluster
                .send::<ListOffsetsRequest, _>(ConnKey::Node(node), |v| {
                    let mut r = ListOffsetsRequest::default();
                    r.replica_id = (-1).into();
                    if v >= 2 {
                        r.isolation_level = isolation_level;
                    }
                    let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
                    for (tp, ts) in &parts {
                        let mut p = ListOffsetsPartition::default();
                        p.partition_index = tp.partition;
                        p.timestamp = *ts;
                        by_topic.entry(tp.topic.as_str()).or_default().push(p);
                    }
                    r.topics = by_topic
                        .into_iter()
                        .map(|(t, ps)| {
                            let mut lt = ListOffsetsTopic::default();
                            lt.name = TopicName(sb(t));
                            lt.partitions = ps;
                            lt
                        })
                        .collect();
                    Ok(r)
                })
                .await;
            (parts, result)
        });
        for (parts, result) in futures::future::join_all(requests).await {
            match result {
                Err(e) if e.is_retriable() => {
                    last_error = Some(e);
                    remaining.extend(parts);
                }
                Err(e) => return Err(e),
                Ok(response) => {
                    let mut answered: HashMap<TopicPartition, (i16, ListedOffset)> = HashMap::new();
                    for t in &response.topics {
                        for p in &t.partitions {
                            answered.insert(
                                TopicPartition::new(t.name.as_str(), p.partition_index),
                                (
                                    p.error_code,
                                    ListedOffset {
                                        offset: p.offset,
                                        timestamp: p.timestamp,
                                        leader_epoch: (p.leader_epoch >= 0)
                                            .then_some(p.leader_epoch),
                                    },
                                ),
                            );
                        }
                    }
                    for (tp, ts) in parts {
                        match answered.remove(&tp) {
                            Some((0, listed)) => {
                                out.insert(tp, listed);
                            }
                            Some((code, _)) => {
                                let e = ClientError::kafka(code, None, format!("ListOffsets {tp}"));
                                if !e.is_retriable() {
                                    return Err(e);
                                }
                                last_error = Some(e);
                                remaining.push((tp, ts));
                            }
                            None => {
                                last_error = Some(ClientError::protocol(format!(
                                    "no ListOffsets answer for {tp}"
                                )));
                                remaining.push((tp, ts));
                            }
                        }
                    }
                }
            }
        }
        if remaining.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(last_error.unwrap_or_else(|| ClientError::Timeout("ListOffsets".into())));
        }
        let delay = cluster.settings.retry_delay(attempt).min(deadline - now);
        attempt += 1;
        tokio::time::sleep(delay).await;
        if last_error.as_ref().is_none_or(needs_metadata_refresh) || attempt > 1 {
            let _ = cluster.refresh().await;
        }
    }
    Ok(out)
}
