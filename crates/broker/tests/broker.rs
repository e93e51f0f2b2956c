//! End-to-end tests of the broker over its Kafka listener, with a minimal wire client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use fjord_common::ErrorCode;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{decode_batch, BatchBuilder, Record};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(n: usize, start: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for i in start..start + n {
        b.push(Record::new(
            Some(format!("k{i}").into_bytes()),
            Some(format!("value-{i}").into_bytes()),
        ));
    }
    b.build().unwrap()
}

fn idempotent_batch(n: usize, pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = BatchBuilder::new(Compression::Lz4, 1_700_000_000_000).producer(pid, epoch, seq);
    for i in 0..n {
        b.push(Record::new(None, Some(format!("v{i}").into_bytes())));
    }
    b.build().unwrap()
}

async fn create_topic(
    c: &mut Client,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreateTopicsResponse {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    for (k, v) in configs {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_string(k.to_string());
        cfg.value = Some(StrBytes::from_string(v.to_string()));
        t.configs.push(cfg);
    }
    let mut req = CreateTopicsRequest::default();
    req.topics.push(t);
    req.timeout_ms = 5000;
    c.call(ApiKey::CreateTopics, 7, &req).await
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data.push(pd);
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 5000;
    req.topic_data.push(td);
    req
}

async fn produce(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let resp: ProduceResponse = c
        .call(
            ApiKey::Produce,
            9,
            &produce_request(topic, partition, records, -1),
        )
        .await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    let mut fp = FetchPartition::default();
    fp.partition = partition;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    fp.current_leader_epoch = -1;
    fp.log_start_offset = -1;
    let mut ft = FetchTopic::default();
    ft.topic = name(topic);
    ft.partitions.push(fp);
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = min_bytes;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics.push(ft);
    req
}

async fn fetch(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let resp: FetchResponse = c
        .call(
            ApiKey::Fetch,
            version,
            &fetch_request(topic, partition, offset, 0, 0),
        )
        .await;
    resp.responses[0].partitions[0].clone()
}

fn record_values(records: &Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for item in fjord_protocol::batch::BatchIter::new(records) {
        let (_, range) = item.unwrap();
        for r in decode_batch(&records[range]).unwrap().records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

async fn list_offset(
    c: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    p.current_leader_epoch = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions.push(p);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics.push(t);
    let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[tokio::test]
async fn api_versions_advertises_and_downgrades() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    let resp: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(resp.error_code, 0);
    let produce = resp.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 11));
    let fetch = resp.api_keys.iter().find(|k| k.api_key == 1).unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));

    // A version from the future gets UNSUPPORTED_VERSION in v0 layout with the full table.
    let id = c
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let _ = c.read_frame().await.unwrap();
    let mut raw = bytes::BytesMut::new();
    raw.extend_from_slice(&[0, 0, 0, 0]);
    raw.extend_from_slice(&18i16.to_be_bytes());
    raw.extend_from_slice(&99i16.to_be_bytes());
    raw.extend_from_slice(&(id + 1).to_be_bytes());
    raw.extend_from_slice(&(-1i16).to_be_bytes());
    let len = (raw.len() - 4) as i32;
    raw[..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&raw).await;
    let frame = c.read_frame().await.unwrap();
    let (corr, resp) = fjord_protocol::frame::decode_response::<ApiVersionsResponse>(
        ApiKey::ApiVersions,
        0,
        frame,
    )
    .unwrap();
    assert_eq!(corr, id + 1);
    assert_eq!(resp.error_code, ErrorCode::UnsupportedVersion.code());
    assert!(resp.api_keys.len() > 10);
    broker.shutdown().await;
}

#[tokio::test]
async fn produce_then_fetch_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    let created = create_topic(&mut c, "orders", 3, &[]).await;
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    assert_eq!(created.topics[0].num_partitions, 3);

    assert_eq!(produce(&mut c, "orders", 1, batch(5, 0)).await, (0, 0));
    assert_eq!(produce(&mut c, "orders", 1, batch(3, 5)).await, (0, 5));
    for version in 4..=12 {
        let p = fetch(&mut c, version, "orders", 1, 0).await;
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 8);
        let values = record_values(p.records.as_ref().unwrap());
        assert_eq!(values.len(), 8, "fetch v{version}");
        assert_eq!(values[7], (7, "value-7".to_string()));
    }
    // A fetch from the middle of a batch returns that whole batch (the client skips ahead).
    let p = fetch(&mut c, 12, "orders", 1, 6).await;
    assert_eq!(record_values(p.records.as_ref().unwrap())[0].0, 5);
    // Past the end: OFFSET_OUT_OF_RANGE.
    let p = fetch(&mut c, 12, "orders", 1, 100).await;
    assert_eq!(p.error_code, ErrorCode::OffsetOutOfRange.code());

    assert_eq!(list_offset(&mut c, "orders", 1, -2).await.1, 0);
    assert_eq!(list_offset(&mut c, "orders", 1, -1).await.1, 8);
    assert_eq!(
        list_offset(&mut c, "orders", 1, 1_700_000_000_000).await.1,
        0
    );
    assert_eq!(
        list_offset(&mut c, "orders", 1, 1_800_000_000_000).await.1,
        -1
    );
    assert_eq!(list_offset(&mut c, "orders", 0, -1).await.1, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn long_poll_fetch_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut admin = broker.client().await;
    create_topic(&mut admin, "wake", 1, &[]).await;
    let mut consumer = broker.client().await;
    // Waits up to 10 minutes: only an append can complete it within the test's timeout.
    let waiting = tokio::spawn(async move {
        let resp: FetchResponse = consumer
            .call(ApiKey::Fetch, 12, &fetch_request("wake", 0, 0, 600_000, 1))
            .await;
        resp
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "fetch returned before data arrived");
    assert_eq!(produce(&mut admin, "wake", 0, batch(1, 0)).await.0, 0);
    let resp = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("fetch was not woken")
        .unwrap();
    let values = record_values(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(values, vec![(0, "value-0".to_string())]);
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &["socket.request.max.bytes=1000"]).await;
    let mut healthy = broker.client().await;
    create_topic(&mut healthy, "t", 1, &[]).await;

    // Oversized frame.
    let mut c = broker.client().await;
    c.send_raw(&5000i32.to_be_bytes()).await;
    assert!(c.is_closed().await);
    // Negative frame length.
    let mut c = broker.client().await;
    c.send_raw(&(-5i32).to_be_bytes()).await;
    assert!(c.is_closed().await);
    // Unknown API key.
    let mut c = broker.client().await;
    c.send_raw(&[0, 0, 0, 10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .await;
    assert!(c.is_closed().await);
    // Known API, garbage body.
    let mut c = broker.client().await;
    c.send_raw(&[0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xde, 0xad])
        .await;
    assert!(c.is_closed().await);
    // An array length of 2^31 in a 14-byte request (found by the request_decoder fuzzer):
    // must not make the decoder pre-allocate gigabytes and abort the process.
    let mut c = broker.client().await;
    c.send_raw(&[
        0, 0, 0, 14, 0, 37, 0, 0, 255, 113, 171, 45, 255, 255, 25, 0, 0, 0,
    ])
    .await;
    assert!(c.is_closed().await);
    // Produce v2 is advertised (for old librdkafka) but rejected.
    let mut c = broker.client().await;
    c.send_raw(&[0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff])
        .await;
    assert!(c.is_closed().await);

    // A batch with a bad CRC gets CORRUPT_MESSAGE and nothing is appended.
    let mut bad = batch(2, 0).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert_eq!(
        produce(&mut healthy, "t", 0, Bytes::from(bad)).await.0,
        ErrorCode::CorruptMessage.code()
    );
    // Two batches in one partition's data: INVALID_RECORD.
    let mut two = batch(1, 0).to_vec();
    two.extend_from_slice(&batch(1, 1));
    assert_eq!(
        produce(&mut healthy, "t", 0, Bytes::from(two)).await.0,
        ErrorCode::InvalidRecord.code()
    );
    // Unknown partition.
    assert_eq!(
        produce(&mut healthy, "t", 7, batch(1, 0)).await.0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    // The healthy connection still works and nothing bad was stored.
    assert_eq!(produce(&mut healthy, "t", 0, batch(1, 0)).await, (0, 0));
    broker.shutdown().await;
}

#[tokio::test]
async fn auto_create_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(
        dir.path(),
        &["auto.create.topics.enable=false", "num.partitions=4"],
    )
    .await;
    let mut c = broker.client().await;
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name("nope"));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(
        resp.topics[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut c, "nope", 0, batch(1, 0)).await.0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    broker.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &["num.partitions=4"]).await;
    let mut c = broker.client().await;
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 4);
    assert_ne!(resp.topics[0].topic_id, uuid::Uuid::nil());
    // An invalid name is never created.
    let mut bad = MetadataRequestTopic::default();
    bad.name = Some(name("bad/name"));
    req.topics = Some(vec![bad]);
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    assert_eq!(
        resp.topics[0].error_code,
        ErrorCode::InvalidTopicException.code()
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn idempotent_producer_dedups_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let mut init_req = InitProducerIdRequest::default();
    init_req.transactional_id = None;
    init_req.producer_id = ProducerId(-1);
    init_req.producer_epoch = -1;
    let init: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &init_req).await;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    assert!(pid >= 0);
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(3, pid, 0, 0)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(2, pid, 0, 3)).await,
        (0, 3)
    );
    // A retried batch is acknowledged with its original offset and not appended again.
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(2, pid, 0, 3)).await,
        (0, 3)
    );
    // A gap in sequence numbers is rejected.
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(1, pid, 0, 9))
            .await
            .0,
        ErrorCode::OutOfOrderSequenceNumber.code()
    );
    // Crash (no clean shutdown): drop the broker without flushing.
    let running = broker.running.unwrap();
    drop(running);
    drop(c);
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(2, pid, 0, 3)).await,
        (0, 3)
    );
    assert_eq!(
        produce(&mut c, "idem", 0, idempotent_batch(1, pid, 0, 5)).await,
        (0, 5)
    );
    let p = fetch(&mut c, 12, "idem", 0, 0).await;
    assert_eq!(record_values(p.records.as_ref().unwrap()).len(), 6);
    // A new producer id never repeats one handed out before the restart.
    let mut init_req = InitProducerIdRequest::default();
    init_req.transactional_id = None;
    init_req.producer_id = ProducerId(-1);
    init_req.producer_epoch = -1;
    let init: InitProducerIdResponse = c.call(ApiKey::InitProducerId, 4, &init_req).await;
    assert!(init.producer_id.0 > pid);
    broker.shutdown().await;
}

#[tokio::test]
async fn data_and_topics_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "durable", 2, &[("retention.ms", "-1")]).await;
    for i in 0..20 {
        assert_eq!(
            produce(&mut c, "durable", (i % 2) as i32, batch(10, i * 10))
                .await
                .0,
            0
        );
    }
    broker.shutdown().await;
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    let p = fetch(&mut c, 12, "durable", 0, 0).await;
    assert_eq!(p.high_watermark, 100);
    assert_eq!(record_values(p.records.as_ref().unwrap()).len(), 100);
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_admin_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    let r = create_topic(
        &mut c,
        "cfg",
        1,
        &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
    )
    .await;
    assert_eq!(r.topics[0].error_code, 0);
    let r = create_topic(&mut c, "cfg", 1, &[]).await;
    assert_eq!(r.topics[0].error_code, ErrorCode::TopicAlreadyExists.code());
    let r = create_topic(&mut c, "badcfg", 1, &[("retention.ms", "soon")]).await;
    assert_eq!(r.topics[0].error_code, ErrorCode::InvalidConfig.code());
    let r = create_topic(&mut c, "rf", 1, &[]).await;
    assert_eq!(r.topics[0].error_code, 0);

    // DescribeConfigs: the override and a default, with sources.
    let describe = |topic: &str| {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_string(topic.to_string());
        let mut req = DescribeConfigsRequest::default();
        req.resources.push(res);
        req.include_synonyms = true;
        req
    };
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe("cfg")).await;
    let find = |resp: &DescribeConfigsResponse, key: &str| {
        resp.results[0]
            .configs
            .iter()
            .find(|e| e.name.as_str() == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} missing from {resp:?}"))
    };
    let retention = find(&resp, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.config_source, 1);
    let segment = find(&resp, "segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.config_source, 5);

    // IncrementalAlterConfigs: set and delete.
    let alter = |ops: Vec<(&str, i8, Option<&str>)>| {
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = StrBytes::from_static_str("cfg");
        for (k, op, v) in ops {
            let mut a = incremental_alter_configs_request::AlterableConfig::default();
            a.name = StrBytes::from_string(k.to_string());
            a.config_operation = op;
            a.value = v.map(|v| StrBytes::from_string(v.to_string()));
            res.configs.push(a);
        }
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources.push(res);
        req
    };
    let resp: IncrementalAlterConfigsResponse = c
        .call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &alter(vec![
                ("retention.ms", 1, None),
                ("segment.ms", 0, Some("60000")),
            ]),
        )
        .await;
    assert_eq!(resp.responses[0].error_code, 0);
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &describe("cfg")).await;
    assert_eq!(
        find(&resp, "retention.ms").value.as_deref(),
        Some("604800000")
    );
    assert_eq!(find(&resp, "segment.ms").value.as_deref(), Some("60000"));
    let resp: IncrementalAlterConfigsResponse = c
        .call(
            ApiKey::IncrementalAlterConfigs,
            1,
            &alter(vec![("segment.ms", 0, Some("never"))]),
        )
        .await;
    assert_eq!(
        resp.responses[0].error_code,
        ErrorCode::InvalidConfig.code()
    );

    // Broker configs: static defaults are described and read-only keys refuse changes.
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 4;
    res.resource_name = StrBytes::from_static_str("1");
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert!(resp.results[0]
        .configs
        .iter()
        .any(|e| e.name.as_str() == "num.partitions" && e.value.as_deref() == Some("1")));

    // CreatePartitions grows, never shrinks.
    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = name("cfg");
    t.count = 3;
    let mut req = CreatePartitionsRequest::default();
    req.topics.push(t.clone());
    let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(produce(&mut c, "cfg", 2, batch(1, 0)).await.0, 0);
    t.count = 2;
    req.topics = vec![t];
    let resp: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(
        resp.results[0].error_code,
        ErrorCode::InvalidPartitions.code()
    );

    // DeleteTopics removes data and metadata.
    let mut req = DeleteTopicsRequest::default();
    req.topic_names.push(name("cfg"));
    let resp: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 4, &req).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        produce(&mut c, "cfg", 0, batch(1, 0)).await.0,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    assert!(!dir.path().join("cfg-0").exists());
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_records_moves_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "dr", 1, &[]).await;
    for i in 0..5 {
        produce(&mut c, "dr", 0, batch(10, i * 10)).await;
    }
    let mut p = delete_records_request::DeleteRecordsPartition::default();
    p.partition_index = 0;
    p.offset = 25;
    let mut t = delete_records_request::DeleteRecordsTopic::default();
    t.name = name("dr");
    t.partitions.push(p);
    let mut req = DeleteRecordsRequest::default();
    req.topics.push(t);
    let resp: DeleteRecordsResponse = c.call(ApiKey::DeleteRecords, 2, &req).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions[0].low_watermark, 25);
    assert_eq!(list_offset(&mut c, "dr", 0, -2).await.1, 25);
    assert_eq!(
        fetch(&mut c, 12, "dr", 0, 10).await.error_code,
        ErrorCode::OffsetOutOfRange.code()
    );
    broker.shutdown().await;
}

fn keyed_batch(round: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    for k in 0..5 {
        b.push(Record::new(
            Some(format!("k{k}").into_bytes()),
            Some(format!("round-{round}").into_bytes()),
        ));
    }
    b.build().unwrap()
}

fn keyed_values(records: &Bytes) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for item in fjord_protocol::batch::BatchIter::new(records) {
        let (_, range) = item.unwrap();
        for r in decode_batch(&records[range]).unwrap().records {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            out.push((
                key,
                String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn compacted_topics_keep_the_latest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), &["log.cleaner.backoff.ms=50"]).await;
    let mut c = broker.client().await;
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    assert_eq!(
        create_topic(&mut c, "latest", 1, &configs).await.topics[0].error_code,
        0
    );
    for round in 0..40 {
        assert_eq!(produce(&mut c, "latest", 0, keyed_batch(round)).await.0, 0);
    }
    // Keyless records cannot be compacted: rejected as Kafka does.
    let mut keyless = BatchBuilder::new(Compression::None, 1_700_000_000_000);
    keyless.push(Record::new(None, Some(b"no key".to_vec())));
    let keyless = keyless.build().unwrap();
    assert_eq!(
        produce(&mut c, "latest", 0, keyless).await.0,
        ErrorCode::InvalidRecord.code()
    );

    // Wait for the background cleaner to compact the closed segments.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let values = loop {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let p = fetch(&mut c, 12, "latest", 0, offset).await;
            let records = p.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            let mut last = offset;
            for item in fjord_protocol::batch::BatchIter::new(&records) {
                last = item.unwrap().0.next_offset();
            }
            all.extend(keyed_values(&records));
            offset = last;
        }
        if all.len() < 200 {
            break all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cleaner never compacted the topic"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Every key still reads back with its latest value last.
    for k in 0..5 {
        let key = format!("k{k}");
        let last = values
            .iter()
            .rev()
            .find(|(kk, _)| *kk == key)
            .map(|(_, v)| v.clone());
        assert_eq!(last.as_deref(), Some("round-39"), "{key}");
    }
    broker.shutdown().await;
}
