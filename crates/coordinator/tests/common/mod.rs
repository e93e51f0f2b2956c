//! Helpers shared by the integration tests: subscription encoding and printing effects in
//! a stable text form.

#![allow(dead_code)]

use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};
use fjord_coordinator::record::CoordinatorRecord;
use fjord_coordinator::{Effect, GroupSummary, PersistRecord, Response};
use fjord_protocol::kafka_protocol::messages::ConsumerProtocolSubscription;
use fjord_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A consumer-protocol subscription (version 0) to `topics`, with its int16 version prefix.
pub(crate) fn subscription(topics: &[&str]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string((*t).to_owned()))
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    sub.encode(&mut buf, 0).expect("encode subscription");
    buf.freeze()
}

/// Shows a subscription as `[t1,t2]`, or its raw bytes if it is not one.
pub(crate) fn show_subscription(bytes: &[u8]) -> String {
    if bytes.len() >= 2 {
        let mut buf = Bytes::copy_from_slice(&bytes[2..]);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut buf, 0) {
            let topics: Vec<String> = sub.topics.iter().map(|t| t.to_string()).collect();
            return format!("[{}]", topics.join(","));
        }
    }
    format!("{:?}", String::from_utf8_lossy(bytes))
}

pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("null")
}

pub(crate) fn show_record(record: &PersistRecord) -> String {
    match CoordinatorRecord::decode(&record.key, record.value.as_deref()) {
        Err(e) => format!("undecodable record: {e}"),
        Ok(CoordinatorRecord::Unknown { key_version }) => format!("unknown record {key_version}"),
        Ok(CoordinatorRecord::OffsetCommit {
            group,
            topic,
            partition,
            value,
        }) => match value {
            None => format!("offset {group} {topic}/{partition} tombstone"),
            Some(v) => {
                let mut s = format!(
                    "offset {group} {topic}/{partition} = {} epoch={} meta={:?} ts={}",
                    v.offset,
                    v.leader_epoch,
                    abbreviate(&v.metadata),
                    v.commit_timestamp
                );
                if let Some(e) = v.expire_timestamp {
                    let _ = write!(s, " expire={e}");
                }
                s
            }
        },
        Ok(CoordinatorRecord::GroupMetadata { group, value }) => match value {
            None => format!("group {group} tombstone"),
            Some(v) => {
                let members: Vec<String> = v
                    .members
                    .iter()
                    .map(|m| {
                        let mut s = m.member_id.clone();
                        if let Some(i) = &m.group_instance_id {
                            let _ = write!(s, "(instance={i})");
                        }
                        let _ = write!(
                            s,
                            " client={} host={} session={} rebalance={} sub={} assign={}",
                            m.client_id,
                            m.client_host,
                            m.session_timeout_ms,
                            m.rebalance_timeout_ms,
                            show_subscription(&m.subscription),
                            show_bytes(&m.assignment)
                        );
                        s
                    })
                    .collect();
                let mut s = format!(
                    "group {group} type={:?} gen={} protocol={} leader={} ts={}",
                    v.protocol_type,
                    v.generation,
                    opt(&v.protocol),
                    opt(&v.leader),
                    v.current_state_timestamp
                );
                for m in members {
                    let _ = write!(s, "\n    member {m}");
                }
                s
            }
        },
    }
}

fn abbreviate(s: &str) -> String {
    if s.len() > 24 {
        format!("{}...({} chars)", &s[..8], s.chars().count())
    } else {
        s.to_owned()
    }
}

fn err(e: fjord_common::ErrorCode) -> String {
    e.name()
}

pub(crate) fn show_response(label: &str, response: &Response) -> String {
    match response {
        Response::JoinGroup(r) => {
            let mut s = format!(
                "respond {label} JoinGroup err={} member={} gen={} type={} protocol={} leader={}",
                err(r.error),
                show_id(&r.member_id),
                r.generation_id,
                opt(&r.protocol_type),
                opt(&r.protocol_name),
                show_id(&r.leader)
            );
            if r.skip_assignment {
                s.push_str(" skip_assignment");
            }
            if !r.members.is_empty() {
                let members: Vec<String> = r
                    .members
                    .iter()
                    .map(|m| {
                        let instance = m
                            .group_instance_id
                            .as_ref()
                            .map(|i| format!("(instance={i})"))
                            .unwrap_or_default();
                        format!(
                            "{}{instance}{}",
                            m.member_id,
                            show_subscription(&m.metadata)
                        )
                    })
                    .collect();
                let _ = write!(s, " members=[{}]", members.join(" "));
            }
            s
        }
        Response::SyncGroup(r) => format!(
            "respond {label} SyncGroup err={} type={} protocol={} assign={}",
            err(r.error),
            opt(&r.protocol_type),
            opt(&r.protocol_name),
            show_bytes(&r.assignment)
        ),
        Response::Heartbeat(r) => format!("respond {label} Heartbeat err={}", err(r.error)),
        Response::LeaveGroup(r) => {
            let members: Vec<String> = r
                .members
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}:{}",
                        m.member_id,
                        m.group_instance_id.as_deref().unwrap_or(""),
                        err(m.error)
                    )
                })
                .collect();
            format!(
                "respond {label} LeaveGroup err={} members=[{}]",
                err(r.error),
                members.join(" ")
            )
        }
        Response::OffsetCommit(r) => {
            let parts: Vec<String> = r
                .partitions
                .iter()
                .map(|p| format!("{}/{}:{}", p.topic, p.partition, err(p.error)))
                .collect();
            format!("respond {label} OffsetCommit {}", parts.join(" "))
        }
        Response::OffsetFetch(r) => {
            let parts: Vec<String> = r
                .partitions
                .iter()
                .map(|p| {
                    let mut s = format!("{}/{}={}", p.topic, p.partition, p.offset);
                    if p.leader_epoch != -1 {
                        let _ = write!(s, "@{}", p.leader_epoch);
                    }
                    if !p.metadata.is_empty() {
                        let _ = write!(s, "~{:?}", abbreviate(&p.metadata));
                    }
                    if p.error != fjord_common::ErrorCode::None {
                        let _ = write!(s, ":{}", err(p.error));
                    }
                    s
                })
                .collect();
            format!(
                "respond {label} OffsetFetch err={} [{}]",
                err(r.error),
                parts.join(" ")
            )
        }
        Response::OffsetDelete(r) => {
            let parts: Vec<String> = r
                .partitions
                .iter()
                .map(|p| format!("{}/{}:{}", p.topic, p.partition, err(p.error)))
                .collect();
            format!(
                "respond {label} OffsetDelete err={} [{}]",
                err(r.error),
                parts.join(" ")
            )
        }
        Response::DescribeGroups(r) => {
            let mut s = format!("respond {label} DescribeGroups");
            for g in &r.groups {
                let _ = write!(
                    s,
                    "\n  {} err={} state={} type={:?} protocol={:?}",
                    g.group_id,
                    err(g.error),
                    g.state,
                    g.protocol_type,
                    g.protocol
                );
                for m in &g.members {
                    let _ = write!(
                        s,
                        "\n    {} instance={} client={} host={} sub={} assign={}",
                        m.member_id,
                        m.group_instance_id.as_deref().unwrap_or("null"),
                        m.client_id,
                        m.client_host,
                        if m.metadata.is_empty() {
                            "\"\"".to_owned()
                        } else {
                            show_subscription(&m.metadata)
                        },
                        show_bytes(&m.assignment)
                    );
                }
            }
            s
        }
        Response::ListGroups(r) => {
            let groups: Vec<String> = r
                .groups
                .iter()
                .map(|g| {
                    format!(
                        "{}({:?},{},{})",
                        g.group_id, g.protocol_type, g.state, g.group_type
                    )
                })
                .collect();
            format!(
                "respond {label} ListGroups err={} [{}]",
                err(r.error),
                groups.join(" ")
            )
        }
        Response::DeleteGroups(r) => {
            let parts: Vec<String> = r
                .results
                .iter()
                .map(|g| format!("{}:{}", g.group_id, err(g.error)))
                .collect();
            format!("respond {label} DeleteGroups {}", parts.join(" "))
        }
    }
}

fn show_id(id: &str) -> &str {
    if id.is_empty() {
        "\"\""
    } else {
        id
    }
}

pub(crate) fn show_effects(effects: &[Effect], label_of: impl Fn(u64) -> String) -> String {
    let mut lines = Vec::new();
    for effect in effects {
        match effect {
            Effect::Persist { partition, records } => {
                lines.push(format!("persist p={partition}"));
                for r in records {
                    lines.push(format!("  {}", show_record(r)));
                }
            }
            Effect::Respond {
                request_id,
                response,
            } => lines.push(show_response(&label_of(request_id.0), response)),
        }
    }
    if lines.is_empty() {
        "(no effects)".to_owned()
    } else {
        lines.join("\n")
    }
}

pub(crate) fn show_summary(summary: &GroupSummary) -> String {
    let mut s = format!(
        "{} state={} gen={} type={} protocol={} leader={}",
        summary.group_id,
        summary.state,
        summary.generation,
        opt(&summary.protocol_type),
        opt(&summary.protocol_name),
        opt(&summary.leader)
    );
    for m in &summary.members {
        let _ = write!(
            s,
            "\n  {}{} sub={} assign={}",
            m.member_id,
            m.group_instance_id
                .as_ref()
                .map(|i| format!("(instance={i})"))
                .unwrap_or_default(),
            show_subscription(&m.metadata),
            show_bytes(&m.assignment)
        );
    }
    s
}
