//! Consumer-group APIs: wire ↔ domain conversion around the group coordinator.
//!
//! Version differences (v0 JoinGroup without a rebalance timeout, batched LeaveGroup from v3,
//! FindCoordinator v4 key batches, OffsetFetch v8 group batches, …) are resolved here so the
//! state machine only sees domain requests.

use super::{sb, HandlerResult, RequestContext};
use crate::broker::Broker;
use fjord_common::ErrorCode;
use fjord_coordinator as gc;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn opt(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|v| v.to_string())
}

pub(crate) async fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    match ctx.request.api_key {
        ApiKey::FindCoordinator => find_coordinator(ctx),
        ApiKey::JoinGroup => join_group(ctx).await,
        ApiKey::SyncGroup => sync_group(ctx).await,
        ApiKey::Heartbeat => heartbeat(ctx).await,
        ApiKey::LeaveGroup => leave_group(ctx).await,
        ApiKey::OffsetCommit => offset_commit(ctx).await,
        ApiKey::OffsetFetch => offset_fetch(ctx).await,
        ApiKey::OffsetDelete => offset_delete(ctx).await,
        ApiKey::DescribeGroups => describe_groups(ctx).await,
        ApiKey::ListGroups => list_groups(ctx).await,
        _ => delete_groups(ctx).await,
    }
}

async fn submit(
    broker: &Broker,
    call: impl FnOnce(&mut gc::GroupCoordinator, gc::RequestId, i64) -> Vec<gc::Effect>,
) -> Option<gc::Response> {
    broker.groups.submit(broker, call).await
}

fn find_coordinator(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: FindCoordinatorRequest = ctx.decode()?;
    let version = ctx.version();
    let broker = ctx.broker;
    let (host, port) = broker.advertised_endpoint();
    let keys: Vec<String> = if version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let answer = |key: &str| -> (ErrorCode, String) {
        if request.key_type != 0 {
            return (
                ErrorCode::CoordinatorNotAvailable,
                "transaction coordinators are not supported yet".into(),
            );
        }
        if key.is_empty() {
            return (
                ErrorCode::InvalidRequest,
                "group id must not be empty".into(),
            );
        }
        match broker.groups.ensure_offsets_topic(broker) {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(code) => (code, "the offsets topic is not available".into()),
        }
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        for key in keys {
            let (code, message) = answer(&key);
            let mut c = find_coordinator_response::Coordinator::default();
            c.key = sb(key);
            c.error_code = code.code();
            c.error_message = (code != ErrorCode::None).then(|| sb(message));
            if code == ErrorCode::None {
                c.node_id = BrokerId(broker.config.node_id);
                c.host = sb(host.clone());
                c.port = port;
            } else {
                c.node_id = BrokerId(-1);
                c.port = -1;
            }
            response.coordinators.push(c);
        }
    } else {
        let (code, message) = answer(keys.first().map(String::as_str).unwrap_or(""));
        response.error_code = code.code();
        if version >= 1 {
            response.error_message = (code != ErrorCode::None).then(|| sb(message));
        }
        if code == ErrorCode::None {
            response.node_id = BrokerId(broker.config.node_id);
            response.host = sb(host);
            response.port = port;
        } else {
            response.node_id = BrokerId(-1);
            response.port = -1;
        }
    }
    ctx.respond(&response)
}

async fn join_group(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: JoinGroupRequest = ctx.decode()?;
    let version = ctx.version();
    let req = gc::JoinGroupRequest {
        group_id: r.group_id.to_string(),
        member_id: r.member_id.to_string(),
        group_instance_id: if version >= 5 {
            opt(&r.group_instance_id)
        } else {
            None
        },
        protocol_type: r.protocol_type.to_string(),
        protocols: r
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        session_timeout_ms: r.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            r.rebalance_timeout_ms
        } else {
            r.session_timeout_ms
        },
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
        reason: if version >= 8 { opt(&r.reason) } else { None },
    };
    let member_id = req.member_id.clone();
    let result = submit(ctx.broker, |c, id, now| c.join_group(req, id, now)).await;
    let d = match result {
        Some(gc::Response::JoinGroup(d)) => d,
        _ => gc::JoinGroupResponse::error(member_id, ErrorCode::CoordinatorNotAvailable),
    };
    let mut response = JoinGroupResponse::default();
    response.error_code = d.error.code();
    response.generation_id = d.generation_id;
    if version >= 7 {
        response.protocol_type = d.protocol_type.map(sb);
        response.protocol_name = d.protocol_name.map(sb);
    } else {
        response.protocol_name = Some(sb(d.protocol_name.unwrap_or_default()));
    }
    response.leader = sb(d.leader);
    if version >= 9 {
        response.skip_assignment = d.skip_assignment;
    }
    response.member_id = sb(d.member_id);
    for m in d.members {
        let mut wm = join_group_response::JoinGroupResponseMember::default();
        wm.member_id = sb(m.member_id);
        if version >= 5 {
            wm.group_instance_id = m.group_instance_id.map(sb);
        }
        wm.metadata = m.metadata;
        response.members.push(wm);
    }
    ctx.respond(&response)
}

async fn sync_group(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: SyncGroupRequest = ctx.decode()?;
    let version = ctx.version();
    let req = gc::SyncGroupRequest {
        group_id: r.group_id.to_string(),
        generation_id: r.generation_id,
        member_id: r.member_id.to_string(),
        group_instance_id: if version >= 3 {
            opt(&r.group_instance_id)
        } else {
            None
        },
        protocol_type: if version >= 5 {
            opt(&r.protocol_type)
        } else {
            None
        },
        protocol_name: if version >= 5 {
            opt(&r.protocol_name)
        } else {
            None
        },
        assignments: r
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let d = match submit(ctx.broker, |c, id, now| c.sync_group(req, id, now)).await {
        Some(gc::Response::SyncGroup(d)) => d,
        _ => gc::SyncGroupResponse::error(ErrorCode::CoordinatorNotAvailable),
    };
    let mut response = SyncGroupResponse::default();
    response.error_code = d.error.code();
    if version >= 5 {
        response.protocol_type = d.protocol_type.map(sb);
        response.protocol_name = d.protocol_name.map(sb);
    }
    response.assignment = d.assignment;
    ctx.respond(&response)
}

async fn heartbeat(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: HeartbeatRequest = ctx.decode()?;
    let req = gc::HeartbeatRequest {
        group_id: r.group_id.to_string(),
        generation_id: r.generation_id,
        member_id: r.member_id.to_string(),
        group_instance_id: if ctx.version() >= 3 {
            opt(&r.group_instance_id)
        } else {
            None
        },
    };
    let error = match submit(ctx.broker, |c, id, now| c.heartbeat(req, id, now)).await {
        Some(gc::Response::Heartbeat(d)) => d.error,
        _ => ErrorCode::CoordinatorNotAvailable,
    };
    let mut response = HeartbeatResponse::default();
    response.error_code = error.code();
    ctx.respond(&response)
}

async fn leave_group(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: LeaveGroupRequest = ctx.decode()?;
    let version = ctx.version();
    let members = if version >= 3 {
        r.members
            .iter()
            .map(|m| gc::LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: opt(&m.group_instance_id),
                reason: if version >= 5 { opt(&m.reason) } else { None },
            })
            .collect()
    } else {
        vec![gc::LeavingMember {
            member_id: r.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    };
    let req = gc::LeaveGroupRequest {
        group_id: r.group_id.to_string(),
        members,
    };
    let d = match submit(ctx.broker, |c, id, now| c.leave_group(req, id, now)).await {
        Some(gc::Response::LeaveGroup(d)) => d,
        _ => gc::LeaveGroupResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            members: Vec::new(),
        },
    };
    let mut response = LeaveGroupResponse::default();
    if version >= 3 {
        response.error_code = d.error.code();
        for m in d.members {
            let mut wm = leave_group_response::MemberResponse::default();
            wm.member_id = sb(m.member_id);
            wm.group_instance_id = m.group_instance_id.map(sb);
            wm.error_code = m.error.code();
            response.members.push(wm);
        }
    } else {
        // Before v3 the single member's error is the response's error.
        let member_error = d
            .members
            .first()
            .map(|m| m.error)
            .unwrap_or(ErrorCode::None);
        response.error_code = if d.error != ErrorCode::None {
            d.error
        } else {
            member_error
        }
        .code();
    }
    ctx.respond(&response)
}

async fn offset_commit(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: OffsetCommitRequest = ctx.decode()?;
    let version = ctx.version();
    let mut offsets = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            offsets.push(gc::OffsetCommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: opt(&p.committed_metadata),
            });
        }
    }
    let req = gc::OffsetCommitRequest {
        group_id: r.group_id.to_string(),
        generation_id: r.generation_id_or_member_epoch,
        member_id: r.member_id.to_string(),
        group_instance_id: if version >= 7 {
            opt(&r.group_instance_id)
        } else {
            None
        },
        retention_time_ms: if (2..=4).contains(&version) {
            r.retention_time_ms
        } else {
            -1
        },
        api_version: version,
        offsets,
    };
    let results = match submit(ctx.broker, |c, id, now| c.offset_commit(req, id, now)).await {
        Some(gc::Response::OffsetCommit(d)) => Some(d.partitions),
        _ => None,
    };
    let mut response = OffsetCommitResponse::default();
    for t in r.topics {
        let mut wt = offset_commit_response::OffsetCommitResponseTopic::default();
        wt.name = t.name.clone();
        for p in t.partitions {
            let mut wp = offset_commit_response::OffsetCommitResponsePartition::default();
            wp.partition_index = p.partition_index;
            wp.error_code = results
                .as_ref()
                .and_then(|rs| {
                    rs.iter()
                        .find(|x| x.topic == t.name.as_str() && x.partition == p.partition_index)
                })
                .map_or(ErrorCode::CoordinatorNotAvailable, |x| x.error)
                .code();
            wt.partitions.push(wp);
        }
        response.topics.push(wt);
    }
    ctx.respond(&response)
}

async fn fetch_group_offsets(
    broker: &Broker,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> gc::OffsetFetchResponse {
    let req = gc::OffsetFetchRequest { group_id, topics };
    match submit(broker, |c, id, now| c.offset_fetch(req, id, now)).await {
        Some(gc::Response::OffsetFetch(d)) => d,
        _ => gc::OffsetFetchResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            partitions: Vec::new(),
        },
    }
}

/// Groups fetched partitions by topic, keeping first-seen topic order.
fn by_topic(
    partitions: Vec<gc::OffsetFetchPartition>,
) -> Vec<(String, Vec<gc::OffsetFetchPartition>)> {
    let mut out: Vec<(String, Vec<gc::OffsetFetchPartition>)> = Vec::new();
    for p in partitions {
        match out.iter_mut().find(|(t, _)| *t == p.topic) {
            Some((_, list)) => list.push(p),
            None => out.push((p.topic.clone(), vec![p])),
        }
    }
    out
}

async fn offset_fetch(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: OffsetFetchRequest = ctx.decode()?;
    let version = ctx.version();
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for g in r.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let d = fetch_group_offsets(ctx.broker, g.group_id.to_string(), topics).await;
            let mut wg = offset_fetch_response::OffsetFetchResponseGroup::default();
            wg.group_id = g.group_id;
            wg.error_code = d.error.code();
            for (topic, parts) in by_topic(d.partitions) {
                let mut wt = offset_fetch_response::OffsetFetchResponseTopics::default();
                wt.name = TopicName(sb(topic));
                for p in parts {
                    let mut wp = offset_fetch_response::OffsetFetchResponsePartitions::default();
                    wp.partition_index = p.partition;
                    wp.committed_offset = p.offset;
                    wp.committed_leader_epoch = p.leader_epoch;
                    wp.metadata = Some(sb(p.metadata));
                    wp.error_code = p.error.code();
                    wt.partitions.push(wp);
                }
                wg.topics.push(wt);
            }
            response.groups.push(wg);
        }
    } else {
        let topics = r.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        let d = fetch_group_offsets(ctx.broker, r.group_id.to_string(), topics).await;
        if version >= 2 {
            response.error_code = d.error.code();
        }
        for (topic, parts) in by_topic(d.partitions) {
            let mut wt = offset_fetch_response::OffsetFetchResponseTopic::default();
            wt.name = TopicName(sb(topic));
            for p in parts {
                let mut wp = offset_fetch_response::OffsetFetchResponsePartition::default();
                wp.partition_index = p.partition;
                wp.committed_offset = p.offset;
                if version >= 5 {
                    wp.committed_leader_epoch = p.leader_epoch;
                }
                wp.metadata = Some(sb(p.metadata));
                // Before v2 a group-level error is reported on every partition.
                wp.error_code = if version < 2 && d.error != ErrorCode::None {
                    d.error
                } else {
                    p.error
                }
                .code();
                wt.partitions.push(wp);
            }
            response.topics.push(wt);
        }
    }
    ctx.respond(&response)
}

async fn offset_delete(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: OffsetDeleteRequest = ctx.decode()?;
    let req = gc::OffsetDeleteRequest {
        group_id: r.group_id.to_string(),
        topics: r
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.to_string(),
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect(),
    };
    let d = match submit(ctx.broker, |c, id, now| c.offset_delete(req, id, now)).await {
        Some(gc::Response::OffsetDelete(d)) => d,
        _ => gc::OffsetDeleteResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            partitions: Vec::new(),
        },
    };
    let mut response = OffsetDeleteResponse::default();
    response.error_code = d.error.code();
    for t in r.topics {
        let mut wt = offset_delete_response::OffsetDeleteResponseTopic::default();
        wt.name = t.name.clone();
        for p in t.partitions {
            let mut wp = offset_delete_response::OffsetDeleteResponsePartition::default();
            wp.partition_index = p.partition_index;
            wp.error_code = d
                .partitions
                .iter()
                .find(|x| x.topic == t.name.as_str() && x.partition == p.partition_index)
                .map_or(ErrorCode::None, |x| x.error)
                .code();
            wt.partitions.push(wp);
        }
        response.topics.push(wt);
    }
    ctx.respond(&response)
}

async fn describe_groups(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: DescribeGroupsRequest = ctx.decode()?;
    let version = ctx.version();
    let req = gc::DescribeGroupsRequest {
        group_ids: r.groups.iter().map(|g| g.to_string()).collect(),
    };
    let groups = match submit(ctx.broker, |c, id, now| c.describe_groups(req, id, now)).await {
        Some(gc::Response::DescribeGroups(d)) => d.groups,
        _ => r
            .groups
            .iter()
            .map(|g| gc::DescribedGroup {
                group_id: g.to_string(),
                error: ErrorCode::CoordinatorNotAvailable,
                state: gc::GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            })
            .collect(),
    };
    let mut response = DescribeGroupsResponse::default();
    for g in groups {
        let mut wg = describe_groups_response::DescribedGroup::default();
        wg.error_message = None;
        wg.error_code = g.error.code();
        wg.group_id = GroupId(sb(g.group_id));
        // A group the coordinator could not describe has no state.
        wg.group_state = if g.error == ErrorCode::None {
            sb(g.state.as_str())
        } else {
            sb("")
        };
        wg.protocol_type = sb(g.protocol_type);
        wg.protocol_data = sb(g.protocol);
        wg.authorized_operations =
            if version >= 3 && r.include_authorized_operations && g.error == ErrorCode::None {
                super::GROUP_OPERATIONS
            } else {
                super::OPERATIONS_NOT_REQUESTED
            };
        for m in g.members {
            let mut wm = describe_groups_response::DescribedGroupMember::default();
            wm.member_id = sb(m.member_id);
            if version >= 4 {
                wm.group_instance_id = m.group_instance_id.map(sb);
            }
            wm.client_id = sb(m.client_id);
            wm.client_host = sb(m.client_host);
            wm.member_metadata = m.metadata;
            wm.member_assignment = m.assignment;
            wg.members.push(wm);
        }
        response.groups.push(wg);
    }
    ctx.respond(&response)
}

async fn list_groups(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: ListGroupsRequest = ctx.decode()?;
    let version = ctx.version();
    let req = gc::ListGroupsRequest {
        states_filter: if version >= 4 {
            r.states_filter.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
        types_filter: if version >= 5 {
            r.types_filter.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
    };
    let d = match submit(ctx.broker, |c, id, now| c.list_groups(req, id, now)).await {
        Some(gc::Response::ListGroups(d)) => d,
        _ => gc::ListGroupsResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            groups: Vec::new(),
        },
    };
    let mut response = ListGroupsResponse::default();
    response.error_code = d.error.code();
    for g in d.groups {
        let mut wg = list_groups_response::ListedGroup::default();
        wg.group_id = GroupId(sb(g.group_id));
        wg.protocol_type = sb(g.protocol_type);
        if version >= 4 {
            wg.group_state = sb(g.state.as_str());
        }
        if version >= 5 {
            wg.group_type = sb(g.group_type);
        }
        response.groups.push(wg);
    }
    ctx.respond(&response)
}

async fn delete_groups(ctx: &RequestContext<'_>) -> HandlerResult {
    let r: DeleteGroupsRequest = ctx.decode()?;
    let req = gc::DeleteGroupsRequest {
        group_ids: r.groups_names.iter().map(|g| g.to_string()).collect(),
    };
    let results = match submit(ctx.broker, |c, id, now| c.delete_groups(req, id, now)).await {
        Some(gc::Response::DeleteGroups(d)) => d.results,
        _ => r
            .groups_names
            .iter()
            .map(|g| gc::DeletedGroup {
                group_id: g.to_string(),
                error: ErrorCode::CoordinatorNotAvailable,
            })
            .collect(),
    };
    let mut response = DeleteGroupsResponse::default();
    for g in results {
        let mut wg = delete_groups_response::DeletableGroupResult::default();
        wg.group_id = GroupId(sb(g.group_id));
        wg.error_code = g.error.code();
        response.results.push(wg);
    }
    ctx.respond(&response)
}
