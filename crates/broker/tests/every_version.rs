//! Every advertised version of every API gets a decodable answer on the success path.
//!
//! The generated encoder refuses to write a field that does not exist at the requested
//! version; this test catches handlers that set such fields (the broker would otherwise close
//! the connection on an older client).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestBroker};
use fjord_common::ErrorCode;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{BatchBuilder, Record};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn tn(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}
fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn advertised(c: &mut Client) -> Vec<(i16, i16, i16)> {
    let resp: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    resp.api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect()
}

async fn call_each<Req: Encodable, Resp: Decodable + std::fmt::Debug>(
    c: &mut Client,
    key: ApiKey,
    versions: std::ops::RangeInclusive<i16>,
    make: impl Fn(i16) -> Req,
    check: impl Fn(i16, &Resp),
) {
    for v in versions {
        let resp: Resp = c.call(key, v, &make(v)).await;
        check(v, &resp);
    }
}

#[tokio::test]
async fn every_advertised_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    let table = advertised(&mut c).await;
    let range = |key: ApiKey| {
        let (_, min, max) = *table.iter().find(|(k, _, _)| *k == key as i16).unwrap();
        // Produce is advertised from 0 for old librdkafka but served from 3.
        let min = if key == ApiKey::Produce { 3 } else { min };
        min..=max
    };

    call_each(
        &mut c,
        ApiKey::ApiVersions,
        range(ApiKey::ApiVersions),
        |_| ApiVersionsRequest::default(),
        |v, r: &ApiVersionsResponse| assert_eq!(r.error_code, 0, "ApiVersions v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::CreateTopics,
        range(ApiKey::CreateTopics),
        |v| {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = tn(&format!("created-{v}"));
            t.num_partitions = 2;
            t.replication_factor = 1;
            let mut r = CreateTopicsRequest::default();
            r.topics.push(t);
            r
        },
        |v, r: &CreateTopicsResponse| assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::Metadata,
        range(ApiKey::Metadata),
        |v| {
            let mut r = MetadataRequest::default();
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(tn(&format!("meta-{v}")));
            r.topics = Some(vec![t]);
            r
        },
        |v, r: &MetadataResponse| {
            assert_eq!(r.topics[0].error_code, 0, "Metadata v{v}");
            assert_eq!(r.brokers.len(), 1);
        },
    )
    .await;

    let batch = {
        let mut b = BatchBuilder::new(Compression::Snappy, 1_700_000_000_000);
        b.push(Record::new(Some(b"k".to_vec()), Some(b"v".to_vec())));
        b.build().unwrap()
    };
    call_each(
        &mut c,
        ApiKey::Produce,
        range(ApiKey::Produce),
        |_| {
            let mut pd = produce_request::PartitionProduceData::default();
            pd.index = 0;
            pd.records = Some(batch.clone());
            let mut td = produce_request::TopicProduceData::default();
            td.name = tn("created-2");
            td.partition_data.push(pd);
            let mut r = ProduceRequest::default();
            r.acks = 1;
            r.timeout_ms = 1000;
            r.transactional_id = None;
            r.topic_data.push(td);
            r
        },
        |v, r: &ProduceResponse| {
            assert_eq!(
                r.responses[0].partition_responses[0].error_code, 0,
                "Produce v{v}"
            )
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::ListOffsets,
        range(ApiKey::ListOffsets),
        |_| {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.partition_index = 0;
            p.timestamp = -1;
            let mut t = list_offsets_request::ListOffsetsTopic::default();
            t.name = tn("created-2");
            t.partitions.push(p);
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics.push(t);
            r
        },
        |v, r: &ListOffsetsResponse| {
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.error_code, p.offset), (0, 9), "ListOffsets v{v}");
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::OffsetForLeaderEpoch,
        range(ApiKey::OffsetForLeaderEpoch),
        |_| {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.partition = 0;
            p.leader_epoch = 0;
            p.current_leader_epoch = -1;
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = tn("created-2");
            t.partitions.push(p);
            let mut r = OffsetForLeaderEpochRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics.push(t);
            r
        },
        |v, r: &OffsetForLeaderEpochResponse| {
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.leader_epoch, p.end_offset),
                (0, 0, 9),
                "OffsetForLeaderEpoch v{v}"
            );
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DescribeConfigs,
        range(ApiKey::DescribeConfigs),
        |_| {
            let mut res = describe_configs_request::DescribeConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("created-2");
            res.configuration_keys = None;
            let mut r = DescribeConfigsRequest::default();
            r.resources.push(res);
            r
        },
        |v, r: &DescribeConfigsResponse| {
            assert_eq!(r.results[0].error_code, 0, "DescribeConfigs v{v}");
            assert!(r.results[0].configs.len() > 20);
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::IncrementalAlterConfigs,
        range(ApiKey::IncrementalAlterConfigs),
        |_| {
            let mut a = incremental_alter_configs_request::AlterableConfig::default();
            a.name = s("retention.ms");
            a.config_operation = 0;
            a.value = Some(s("3600000"));
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("created-2");
            res.configs.push(a);
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources.push(res);
            r
        },
        |v, r: &IncrementalAlterConfigsResponse| {
            assert_eq!(r.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}")
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::AlterConfigs,
        range(ApiKey::AlterConfigs),
        |_| {
            let mut a = alter_configs_request::AlterableConfig::default();
            a.name = s("retention.ms");
            a.value = Some(s("7200000"));
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("created-2");
            res.configs.push(a);
            let mut r = AlterConfigsRequest::default();
            r.resources.push(res);
            r
        },
        |v, r: &AlterConfigsResponse| assert_eq!(r.responses[0].error_code, 0, "AlterConfigs v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::CreatePartitions,
        range(ApiKey::CreatePartitions),
        |v| {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = tn("created-3");
            t.count = 3 + v as i32;
            t.assignments = None;
            let mut r = CreatePartitionsRequest::default();
            r.topics.push(t);
            r
        },
        |v, r: &CreatePartitionsResponse| {
            assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{v}")
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DeleteRecords,
        range(ApiKey::DeleteRecords),
        |_| {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.partition_index = 0;
            p.offset = 1;
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = tn("created-2");
            t.partitions.push(p);
            let mut r = DeleteRecordsRequest::default();
            r.topics.push(t);
            r
        },
        |v, r: &DeleteRecordsResponse| {
            assert_eq!(
                r.topics[0].partitions[0].error_code, 0,
                "DeleteRecords v{v}"
            )
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::InitProducerId,
        range(ApiKey::InitProducerId),
        |_| {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = None;
            r.transaction_timeout_ms = 60_000;
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
            r
        },
        |v, r: &InitProducerIdResponse| assert_eq!(r.error_code, 0, "InitProducerId v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DescribeCluster,
        range(ApiKey::DescribeCluster),
        |_| DescribeClusterRequest::default(),
        |v, r: &DescribeClusterResponse| {
            assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
            assert_eq!(r.brokers.len(), 1);
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::SaslHandshake,
        range(ApiKey::SaslHandshake),
        |_| {
            let mut r = SaslHandshakeRequest::default();
            r.mechanism = s("PLAIN");
            r
        },
        |v, r: &SaslHandshakeResponse| assert_eq!(r.error_code, 33, "SaslHandshake v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DeleteTopics,
        range(ApiKey::DeleteTopics),
        |v| {
            let mut r = DeleteTopicsRequest::default();
            let name = format!("meta-{v}");
            if v >= 6 {
                let mut t = delete_topics_request::DeleteTopicState::default();
                t.name = Some(tn(&name));
                r.topics.push(t);
            } else {
                r.topic_names.push(tn(&name));
            }
            r
        },
        |v, r: &DeleteTopicsResponse| assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::FindCoordinator,
        range(ApiKey::FindCoordinator),
        |v| {
            let mut r = FindCoordinatorRequest::default();
            if v >= 4 {
                r.coordinator_keys.push(s("grp"));
            } else {
                r.key = s("grp");
            }
            r
        },
        |v, r: &FindCoordinatorResponse| {
            let code = if v >= 4 {
                r.coordinators[0].error_code
            } else {
                r.error_code
            };
            assert_eq!(code, 0, "FindCoordinator v{v}");
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::OffsetCommit,
        range(ApiKey::OffsetCommit),
        |v| {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = 0;
            p.committed_offset = v as i64;
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.name = tn("created-2");
            t.partitions.push(p);
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(s("grp"));
            r.generation_id_or_member_epoch = -1;
            r.group_instance_id = None;
            r.topics.push(t);
            r
        },
        |v, r: &OffsetCommitResponse| {
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v{v}")
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::OffsetFetch,
        range(ApiKey::OffsetFetch),
        |v| {
            let mut r = OffsetFetchRequest::default();
            if v >= 8 {
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = GroupId(s("grp"));
                g.member_id = None;
                g.topics = None;
                r.groups.push(g);
            } else {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = tn("created-2");
                t.partition_indexes.push(0);
                r.group_id = GroupId(s("grp"));
                r.topics = Some(vec![t]);
            }
            r
        },
        |v, r: &OffsetFetchResponse| {
            let (code, offset) = if v >= 8 {
                let p = &r.groups[0].topics[0].partitions[0];
                (p.error_code, p.committed_offset)
            } else {
                let p = &r.topics[0].partitions[0];
                (p.error_code, p.committed_offset)
            };
            assert_eq!(code, 0, "OffsetFetch v{v}");
            assert!(offset >= 2, "OffsetFetch v{v}: offset {offset}");
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::ListGroups,
        range(ApiKey::ListGroups),
        |_| ListGroupsRequest::default(),
        |v, r: &ListGroupsResponse| {
            assert_eq!(r.error_code, 0, "ListGroups v{v}");
            assert!(r.groups.iter().any(|g| g.group_id.as_str() == "grp"));
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DescribeGroups,
        range(ApiKey::DescribeGroups),
        |_| {
            let mut r = DescribeGroupsRequest::default();
            r.groups.push(GroupId(s("grp")));
            r
        },
        |v, r: &DescribeGroupsResponse| {
            assert_eq!(r.groups[0].error_code, 0, "DescribeGroups v{v}")
        },
    )
    .await;

    call_each(
        &mut c,
        ApiKey::OffsetDelete,
        range(ApiKey::OffsetDelete),
        |_| {
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = tn("created-2");
            t.partitions.push(p);
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(s("grp"));
            r.topics.push(t);
            r
        },
        |v, r: &OffsetDeleteResponse| assert_eq!(r.error_code, 0, "OffsetDelete v{v}"),
    )
    .await;

    call_each(
        &mut c,
        ApiKey::DeleteGroups,
        range(ApiKey::DeleteGroups),
        |v| {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names
                .push(GroupId(s(if v == 0 { "grp" } else { "gone" })));
            r
        },
        |v, r: &DeleteGroupsResponse| {
            let want = if v == 0 {
                0
            } else {
                ErrorCode::GroupIdNotFound.code()
            };
            assert_eq!(r.results[0].error_code, want, "DeleteGroups v{v}");
        },
    )
    .await;

    broker.shutdown().await;
}
