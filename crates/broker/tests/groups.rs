//! Consumer groups over the wire: join/sync/heartbeat/commit/fetch/leave, and committed offsets
//! surviving a restart (replayed from `__consumer_offsets`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use fjord_common::ErrorCode;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn find_coordinator(c: &mut Client, group: &str) -> FindCoordinatorResponse {
    let mut req = FindCoordinatorRequest::default();
    req.key = s(group);
    c.call(ApiKey::FindCoordinator, 3, &req).await
}

async fn join(c: &mut Client, group: &str, member: &str) -> JoinGroupResponse {
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\x00\x01subscription");
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.session_timeout_ms = 30_000;
    req.rebalance_timeout_ms = 30_000;
    req.member_id = s(member);
    req.group_instance_id = None;
    req.protocol_type = s("consumer");
    req.protocols.push(p);
    c.call(ApiKey::JoinGroup, 7, &req).await
}

async fn sync(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id = generation;
    req.member_id = s(member);
    req.group_instance_id = None;
    req.protocol_type = Some(s("consumer"));
    req.protocol_name = Some(s("range"));
    for (m, a) in assignments {
        let mut x = sync_group_request::SyncGroupRequestAssignment::default();
        x.member_id = s(m);
        x.assignment = Bytes::copy_from_slice(a);
        req.assignments.push(x);
    }
    c.call(ApiKey::SyncGroup, 5, &req).await
}

async fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> i16 {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = partition;
    p.committed_offset = offset;
    p.committed_metadata = Some(s("meta"));
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions.push(p);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = generation;
    req.member_id = s(member);
    req.group_instance_id = None;
    req.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
    resp.topics[0].partitions[0].error_code
}

async fn fetch_offset(c: &mut Client, group: &str, topic: &str, partition: i32) -> (i16, i64) {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partition_indexes.push(partition);
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(s(group));
    req.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn two_members_rebalance_commit_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &["offsets.topic.num.partitions=3"]).await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;

    let fc = find_coordinator(&mut a, "g1").await;
    assert_eq!(fc.error_code, 0);
    assert_eq!(fc.port, broker.addr.port() as i32);

    // First join: MEMBER_ID_REQUIRED with a member id to use.
    let first = join(&mut a, "g1", "").await;
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    let member_a = first.member_id.to_string();
    assert!(!member_a.is_empty());
    let joined = join(&mut a, "g1", &member_a).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member_a);
    let gen1 = joined.generation_id;
    let synced = sync(
        &mut a,
        "g1",
        gen1,
        &member_a,
        &[(&member_a, b"all-partitions")],
    )
    .await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"all-partitions");
    assert_eq!(
        commit(&mut a, "g1", gen1, &member_a, "orders", 0, 42).await,
        0
    );

    // A second member joins: the first learns about the rebalance from its heartbeat.
    let member_b = join(&mut b, "g1", "").await.member_id.to_string();
    let b_join = tokio::spawn(async move {
        let r = join(&mut b, "g1", &member_b).await;
        (b, member_b, r)
    });
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(s("g1"));
    hb.generation_id = gen1;
    hb.member_id = s(&member_a);
    hb.group_instance_id = None;
    let mut rebalancing = false;
    for _ in 0..100 {
        let resp: HeartbeatResponse = a.call(ApiKey::Heartbeat, 4, &hb).await;
        if resp.error_code == ErrorCode::RebalanceInProgress.code() {
            rebalancing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(rebalancing, "the first member was never told to rejoin");
    // A commit with the old generation during the rebalance is fenced once it completes.
    let rejoin = join(&mut a, "g1", &member_a).await;
    let (mut b, member_b, b_joined) = b_join.await.unwrap();
    assert_eq!(rejoin.error_code, 0);
    assert_eq!(b_joined.error_code, 0);
    let gen2 = rejoin.generation_id;
    assert_eq!(gen2, gen1 + 1);
    assert_eq!(rejoin.members.len(), 2, "the leader sees both members");
    assert!(b_joined.members.is_empty(), "followers get no member list");
    let follower = tokio::spawn(async move {
        let r = sync(&mut b, "g1", gen2, &member_b, &[]).await;
        (b, r)
    });
    let leader_sync = sync(
        &mut a,
        "g1",
        gen2,
        &member_a,
        &[(&member_a, b"p0"), (&b_joined.member_id.to_string(), b"p1")],
    )
    .await;
    assert_eq!(&leader_sync.assignment[..], b"p0");
    let (_b, follower_sync) = follower.await.unwrap();
    assert_eq!(&follower_sync.assignment[..], b"p1");
    assert_eq!(
        commit(&mut a, "g1", gen1, &member_a, "orders", 0, 50).await,
        ErrorCode::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&mut a, "g1", gen2, &member_a, "orders", 0, 77).await,
        0
    );
    assert_eq!(fetch_offset(&mut a, "g1", "orders", 0).await, (0, 77));

    // DescribeGroups and ListGroups see it.
    let mut dg = DescribeGroupsRequest::default();
    dg.groups.push(GroupId(s("g1")));
    let described: DescribeGroupsResponse = a.call(ApiKey::DescribeGroups, 5, &dg).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 2);
    let listed: ListGroupsResponse = a
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == "g1"));

    // Restart: the committed offset comes back from __consumer_offsets.
    drop(a);
    broker.shutdown().await;
    let broker = TestBroker::start(dir.path(), &["offsets.topic.num.partitions=3"]).await;
    let mut c = broker.client().await;
    assert_eq!(find_coordinator(&mut c, "g1").await.error_code, 0);
    assert_eq!(fetch_offset(&mut c, "g1", "orders", 0).await, (0, 77));
    broker.shutdown().await;
}

#[tokio::test]
async fn simple_commits_and_group_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &["offsets.topic.num.partitions=2"]).await;
    let mut c = broker.client().await;
    assert_eq!(find_coordinator(&mut c, "standalone").await.error_code, 0);
    // generation -1 / empty member: allowed for a group with no members (kcat, tools).
    assert_eq!(commit(&mut c, "standalone", -1, "", "t", 3, 9).await, 0);
    assert_eq!(fetch_offset(&mut c, "standalone", "t", 3).await, (0, 9));
    assert_eq!(fetch_offset(&mut c, "standalone", "t", 4).await, (0, -1));
    let mut del = DeleteGroupsRequest::default();
    del.groups_names.push(GroupId(s("standalone")));
    del.groups_names.push(GroupId(s("never-existed")));
    let resp: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &del).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        resp.results[1].error_code,
        ErrorCode::GroupIdNotFound.code()
    );
    assert_eq!(fetch_offset(&mut c, "standalone", "t", 3).await, (0, -1));
    broker.shutdown().await;
}
