//! End-to-end tests of `fjord-client` against an in-process Fjord broker: producing with every
//! codec and idempotence, consuming by assignment and by group, rebalances, commits, admin
//! operations, seek/pause/resume.

use fjord_client::{
    Acks, Admin, AdminConfig, AlterConfigOp, AssignorKind, ClientError, Compression,
    ConfigResource, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, NewTopic, OffsetReset,
    OffsetSpec, Producer, ProducerConfig, ProducerRecord, RebalanceListener, TopicPartition,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod in_process;

use in_process::{init_logs, TestBroker};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn create_topic(admin: &Admin, name: &str, partitions: i32) -> TestResult {
    admin
        .create_topics(&[NewTopic::new(name, partitions)])
        .await?;
    Ok(())
}

fn consumer_config(broker: &TestBroker) -> ConsumerConfig {
    ConsumerConfig::new(broker.bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_max_wait_ms(100)
}

/// Polls until `want` records arrived or `timeout` passed.
async fn poll_until(
    consumer: &mut Consumer,
    want: usize,
    timeout: Duration,
) -> Result<Vec<ConsumerRecord>, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(200)).await?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_a_few_records() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "smoke", 3).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let mut deliveries = Vec::new();
    for i in 0..10 {
        deliveries.push(
            producer
                .send(
                    ProducerRecord::new("smoke")
                        .key(format!("key-{i}"))
                        .value(format!("value-{i}"))
                        .header("n", i.to_string()),
                )
                .await?,
        );
    }
    let mut placed = Vec::new();
    for d in deliveries {
        let md = d.await?;
        assert_eq!(&*md.topic, "smoke");
        assert!(md.offset >= 0);
        placed.push(md);
    }
    producer.close().await?;
    let mut consumer = Consumer::new(consumer_config(&broker))?;
    consumer.assign(&[
        TopicPartition::new("smoke", 0),
        TopicPartition::new("smoke", 1),
        TopicPartition::new("smoke", 2),
    ])?;
    let records = poll_until(&mut consumer, 10, Duration::from_secs(10)).await?;
    assert_eq!(records.len(), 10);
    for r in &records {
        let key = String::from_utf8(r.key.clone().unwrap_or_default().to_vec())?;
        let i: usize = key.trim_start_matches("key-").parse()?;
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(r.headers[0].key, "n");
        assert_eq!(placed[i].partition, r.partition);
        assert_eq!(placed[i].offset, r.offset);
    }
    consumer.close().await?;
    broker.stop().await;
    Ok(())
}

/// Java's placement: `(murmur2(key) & 0x7fffffff) % partitions`.
fn java_partition(key: &[u8], partitions: i32) -> i32 {
    fjord_client::partitioner::partition_for_key(key, partitions)
}

fn value_index(r: &ConsumerRecord) -> usize {
    let v = r.value.as_deref().unwrap_or_default();
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.strip_prefix("value-"))
        .and_then(|s| s.split('|').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Checks count, content, per-partition order and key placement of `records`, produced as
/// `key-{i % keys}` / `value-{i}|padding`.
fn check_consumed(records: &[ConsumerRecord], n: usize, keys: usize, partitions: i32) {
    assert_eq!(records.len(), n, "record count");
    let mut seen = vec![false; n];
    let mut last_index: HashMap<i32, usize> = HashMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for r in records {
        let i = value_index(r);
        assert!(i < n, "unexpected value {:?}", r.value);
        assert!(!seen[i], "record {i} consumed twice");
        seen[i] = true;
        let key = format!("key-{}", i % keys);
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(
            r.partition,
            java_partition(key.as_bytes(), partitions),
            "placement of {key}"
        );
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].key, "i");
        assert_eq!(
            r.headers[0].value.as_deref(),
            Some(i.to_string().as_bytes())
        );
        if let Some(prev) = last_index.insert(r.partition, i) {
            assert!(
                prev < i,
                "order within partition {}: {prev} then {i}",
                r.partition
            );
        }
        if let Some(prev) = last_offset.insert(r.partition, r.offset) {
            assert!(prev < r.offset, "offsets increase");
        }
    }
}

async fn produce_keyed(
    producer: &Producer,
    topic: &str,
    n: usize,
    keys: usize,
    partitions: i32,
) -> TestResult {
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{}", i % keys);
        let record = ProducerRecord::new(topic)
            .key(key.clone())
            .value(format!("value-{i}|{}", "p".repeat(i % 50)))
            .header("i", i.to_string());
        deliveries.push((key, producer.send(record).await?));
    }
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    for (key, d) in deliveries {
        let md = d.await?;
        assert_eq!(md.partition, java_partition(key.as_bytes(), partitions));
        let prev = offsets.insert(md.partition, md.offset);
        assert!(
            prev.is_none_or(|p| p < md.offset),
            "acknowledged offsets increase per partition"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_with_idempotence_round_trips_by_assign_and_by_group() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    let n = 10_000;
    let partitions = 4;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = format!("codec-{}", codec.name());
        create_topic(&admin, &topic, partitions).await?;
        let producer = Producer::new(
            ProducerConfig::new(broker.bootstrap())
                .compression(codec)
                .enable_idempotence(true)
                .linger_ms(2),
        )?;
        produce_keyed(&producer, &topic, n, 300, partitions).await?;
        producer.close().await?;

        // By assignment.
        let mut consumer = Consumer::new(consumer_config(&broker).max_poll_records(700))?;
        let tps: Vec<TopicPartition> = (0..partitions)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        consumer.assign(&tps)?;
        let records = poll_until(&mut consumer, n, Duration::from_secs(30)).await?;
        check_consumed(&records, n, 300, partitions);
        // Nothing more arrives.
        assert!(consumer.poll(Duration::from_millis(200)).await?.is_empty());
        consumer.close().await?;

        // By group subscription.
        let mut consumer =
            Consumer::new(consumer_config(&broker).group_id(format!("g-{}", codec.name())))?;
        consumer.subscribe(&[topic.as_str()], None)?;
        let records = poll_until(&mut consumer, n, Duration::from_secs(30)).await?;
        check_consumed(&records, n, 300, partitions);
        assert_eq!(consumer.assignment().len(), partitions as usize);
        consumer.close().await?;
    }
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_one_and_keyless_sticky_batches() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "acks", 3).await?;
    for acks in [Acks::None, Acks::Leader] {
        let producer = Producer::new(ProducerConfig::new(broker.bootstrap()).acks(acks))?;
        let md = producer
            .send(ProducerRecord::new("acks").value("v"))
            .await?
            .await?;
        if acks == Acks::None {
            assert_eq!(md.offset, -1, "acks=0 has no offset");
        } else {
            assert!(md.offset >= 0);
        }
        producer.close().await?;
    }
    // Keyless records stick to one partition per batch: a single small burst lands together.
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()).linger_ms(50))?;
    let mut futures = Vec::new();
    for i in 0..20 {
        futures.push(
            producer
                .send(ProducerRecord::new("acks").value(format!("sticky-{i}")))
                .await?,
        );
    }
    let mut partitions = BTreeSet::new();
    for f in futures {
        partitions.insert(f.await?.partition);
    }
    assert_eq!(
        partitions.len(),
        1,
        "one linger window, one batch, one partition"
    );
    // The next batch goes to another partition (KIP-480: a new sticky partition per batch).
    let first = partitions.iter().next().copied();
    let mut futures = Vec::new();
    for i in 0..20 {
        futures.push(
            producer
                .send(ProducerRecord::new("acks").value(format!("sticky2-{i}")))
                .await?,
        );
    }
    let mut second = BTreeSet::new();
    for f in futures {
        second.insert(f.await?.partition);
    }
    assert_eq!(second.len(), 1);
    assert_ne!(
        second.iter().next().copied(),
        first,
        "a new batch, a new partition"
    );
    // Unknown partition and oversized records are rejected up front.
    let err = producer
        .send(ProducerRecord::new("acks").partition(7).value("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    let err = producer
        .send(ProducerRecord::new("acks").value(vec![0u8; 2 << 20]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::MessageTooLarge), "{err}");
    producer.close().await?;
    assert!(matches!(
        producer
            .send(ProducerRecord::new("acks").value("late"))
            .await,
        Err(ClientError::Closed)
    ));
    broker.stop().await;
    Ok(())
}

/// Records what a group member sees: every record, and its assignment over time.
#[derive(Default)]
struct Seen {
    records: Vec<(TopicPartition, i64)>,
    assigned: BTreeSet<TopicPartition>,
    revoked: Vec<TopicPartition>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for tp in partitions {
            s.assigned.remove(tp);
            s.revoked.push(tp.clone());
        }
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.assigned.extend(partitions.iter().cloned());
    }
}

struct Member {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), ClientError>>,
}

fn spawn_member(config: ConsumerConfig, topic: &str) -> Member {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, st, topic) = (seen.clone(), stop.clone(), topic.to_string());
    let task = tokio::spawn(async move {
        let mut consumer = Consumer::new(config)?;
        consumer.subscribe(&[topic.as_str()], Some(Box::new(Recorder(s.clone()))))?;
        while !st.load(std::sync::atomic::Ordering::Acquire) {
            let records = consumer.poll(Duration::from_millis(100)).await?;
            let mut guard = s.lock().unwrap_or_else(|e| e.into_inner());
            guard
                .records
                .extend(records.iter().map(|r| (r.topic_partition(), r.offset)));
        }
        consumer.close().await
    });
    Member { seen, stop, task }
}

impl Member {
    fn assigned(&self) -> BTreeSet<TopicPartition> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .assigned
            .clone()
    }
    fn count(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records
            .len()
    }
    async fn stop(self) -> Result<Seen, Box<dyn std::error::Error + Send + Sync>> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.task.await??;
        Ok(Arc::try_unwrap(self.seen)
            .map_err(|_| "recorder still shared")?
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()))
    }
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn group_rebalance_loses_nothing(assignor: AssignorKind) -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    let topic = format!("split-{}", assignor.protocol_name());
    let group = format!("group-{}", assignor.protocol_name());
    create_topic(&admin, &topic, 6).await?;
    let config = || {
        consumer_config(&broker)
            .group_id(group.clone())
            .assignment_strategy(&[assignor])
            .heartbeat_interval_ms(100)
            .session_timeout_ms(6000)
            .auto_commit_interval_ms(200)
    };
    let c1 = spawn_member(config(), &topic);
    let c2 = spawn_member(config(), &topic);
    wait_for(
        "two members with three partitions each",
        Duration::from_secs(20),
        || c1.assigned().len() == 3 && c2.assigned().len() == 3,
    )
    .await?;
    assert!(c1.assigned().is_disjoint(&c2.assigned()));

    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()).linger_ms(1))?;
    let total = 3000;
    let mut sent = 0;
    for i in 0..total / 2 {
        drop(
            producer
                .send(
                    ProducerRecord::new(topic.clone())
                        .key(format!("k{i}"))
                        .value("x"),
                )
                .await?,
        );
        sent += 1;
    }
    producer.flush().await?;
    wait_for("the first half consumed", Duration::from_secs(20), || {
        c1.count() + c2.count() >= total / 2
    })
    .await?;
    let before = (c1.assigned(), c2.assigned());
    let revoked = |m: &Member| {
        m.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revoked
            .len()
    };
    let revoked_before = (revoked(&c1), revoked(&c2));

    // A third member joins while records keep coming.
    let c3 = spawn_member(config(), &topic);
    for i in total / 2..total {
        drop(
            producer
                .send(
                    ProducerRecord::new(topic.clone())
                        .key(format!("k{i}"))
                        .value("x"),
                )
                .await?,
        );
        sent += 1;
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    producer.flush().await?;
    wait_for(
        "three members with two partitions each",
        Duration::from_secs(30),
        || c1.assigned().len() == 2 && c2.assigned().len() == 2 && c3.assigned().len() == 2,
    )
    .await?;
    let (a1, a2, a3) = (c1.assigned(), c2.assigned(), c3.assigned());
    let all: BTreeSet<TopicPartition> = a1.iter().chain(&a2).chain(&a3).cloned().collect();
    assert_eq!(
        all.len(),
        6,
        "every partition owned once: {a1:?} {a2:?} {a3:?}"
    );
    if assignor == AssignorKind::CooperativeSticky {
        assert!(
            a1.is_subset(&before.0),
            "sticky: c1 kept its partitions ({:?} -> {a1:?})",
            before.0
        );
        assert!(
            a2.is_subset(&before.1),
            "sticky: c2 kept its partitions ({:?} -> {a2:?})",
            before.1
        );
    }
    // Revocations since the third member was started (the first two may have needed one
    // rebalance of their own when one of them joined a generation before the other).
    let (r1, r2) = (
        revoked(&c1) - revoked_before.0,
        revoked(&c2) - revoked_before.1,
    );
    if assignor == AssignorKind::CooperativeSticky {
        // Incremental: only the partitions that moved to c3 were revoked.
        assert_eq!((r1, r2), (1, 1));
    } else {
        // Eager: everything is revoked before rejoining (maybe over more than one round).
        assert!(r1 >= 3 && r2 >= 3);
    }
    // Every record is consumed (at least once: a rebalance may replay uncommitted ones).
    let distinct = |members: &[&Member]| {
        members
            .iter()
            .flat_map(|m| {
                m.seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .records
                    .clone()
            })
            .collect::<BTreeSet<_>>()
            .len()
    };
    wait_for("every record consumed", Duration::from_secs(30), || {
        distinct(&[&c1, &c2, &c3]) >= sent
    })
    .await?;
    let s1 = c1.stop().await?;
    let s2 = c2.stop().await?;
    let s3 = c3.stop().await?;
    let mut offsets: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
    for (tp, o) in s1.records.iter().chain(&s2.records).chain(&s3.records) {
        offsets.entry(tp.clone()).or_default().insert(*o);
    }
    let consumed: usize = offsets.values().map(BTreeSet::len).sum();
    assert_eq!(consumed, sent, "nothing lost");
    for (tp, set) in &offsets {
        let max = set.iter().max().copied().unwrap_or(-1);
        assert_eq!(set.len() as i64, max + 1, "{tp}: contiguous offsets from 0");
    }
    producer.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_group_splits_and_rebalances_without_loss() -> TestResult {
    group_rebalance_loses_nothing(AssignorKind::Range).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_group_rebalances_incrementally() -> TestResult {
    group_rebalance_loses_nothing(AssignorKind::CooperativeSticky).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_group_splits() -> TestResult {
    group_rebalance_loses_nothing(AssignorKind::RoundRobin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_restart_continues_from_the_commit() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "resume", 1).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    for i in 0..100 {
        drop(
            producer
                .send(ProducerRecord::new("resume").value(format!("value-{i}")))
                .await?,
        );
    }
    producer.close().await?;
    let tp = TopicPartition::new("resume", 0);
    let config = || {
        consumer_config(&broker)
            .group_id("resumers")
            .enable_auto_commit(false)
            .max_poll_records(40)
    };
    let mut first = Consumer::new(config())?;
    first.subscribe(&["resume"], None)?;
    let records = poll_until(&mut first, 1, Duration::from_secs(20)).await?;
    assert_eq!(records.len(), 40, "max.poll.records");
    assert_eq!(records[0].offset, 0);
    assert_eq!(first.position(&tp).await?, 40);
    first.commit_sync().await?;
    assert_eq!(
        first.committed(std::slice::from_ref(&tp)).await?[&tp],
        Some(40)
    );
    // Read ten more without committing them: they come again after the restart.
    let more = first.poll(Duration::from_secs(5)).await?;
    assert!(!more.is_empty());
    first.close().await?;

    let mut second = Consumer::new(config())?;
    second.subscribe(&["resume"], None)?;
    let records = poll_until(&mut second, 1, Duration::from_secs(20)).await?;
    assert_eq!(records[0].offset, 40, "continues from the commit");
    let last = records.last().map(|r| r.offset).unwrap_or(0);
    // commit_async, then explicit offsets.
    second.commit_async().await?;
    assert_eq!(
        second.committed(std::slice::from_ref(&tp)).await?[&tp],
        Some(last + 1)
    );
    second
        .commit_offsets_sync(HashMap::from([(tp.clone(), 77)]))
        .await?;
    assert_eq!(
        second.committed(std::slice::from_ref(&tp)).await?[&tp],
        Some(77)
    );
    second.close().await?;

    // Auto-commit on close.
    let mut third = Consumer::new(config().enable_auto_commit(true))?;
    third.subscribe(&["resume"], None)?;
    let records = poll_until(&mut third, 23, Duration::from_secs(20)).await?;
    assert_eq!(records[0].offset, 77);
    assert_eq!(records.last().map(|r| r.offset), Some(99));
    third.close().await?;
    let offsets = admin.list_consumer_group_offsets("resumers").await?;
    assert_eq!(offsets.get(&tp), Some(&100));
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_reset_policies() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "reset", 1).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    for i in 0..10 {
        producer
            .send(ProducerRecord::new("reset").value(format!("old-{i}")))
            .await?
            .await?;
    }
    let tp = TopicPartition::new("reset", 0);
    // latest: only records written after the consumer got its position.
    let mut latest = Consumer::new(
        consumer_config(&broker)
            .group_id("reset-latest")
            .auto_offset_reset(OffsetReset::Latest),
    )?;
    latest.assign(std::slice::from_ref(&tp))?;
    assert_eq!(latest.position(&tp).await?, 10);
    producer
        .send(ProducerRecord::new("reset").value("new"))
        .await?
        .await?;
    let records = poll_until(&mut latest, 1, Duration::from_secs(10)).await?;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"new"[..]));
    // none: an error naming the partition.
    let mut none = Consumer::new(
        consumer_config(&broker)
            .group_id("reset-none")
            .auto_offset_reset(OffsetReset::None),
    )?;
    none.assign(std::slice::from_ref(&tp))?;
    let err = none.poll(Duration::from_millis(500)).await.unwrap_err();
    assert!(
        matches!(err, ClientError::NoOffsetForPartition(ref p) if *p == tp),
        "{err}"
    );
    producer.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_pause_and_resume() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "seeking", 2).await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    for p in 0..2 {
        for i in 0..20 {
            drop(
                producer
                    .send(
                        ProducerRecord::new("seeking")
                            .partition(p)
                            .value(format!("value-{i}")),
                    )
                    .await?,
            );
        }
    }
    producer.flush().await?;
    let (p0, p1) = (
        TopicPartition::new("seeking", 0),
        TopicPartition::new("seeking", 1),
    );
    let mut consumer = Consumer::new(consumer_config(&broker))?;
    consumer.assign(&[p0.clone(), p1.clone()])?;
    let all = poll_until(&mut consumer, 40, Duration::from_secs(10)).await?;
    assert_eq!(all.len(), 40);

    consumer.seek(&p0, 5)?;
    let again = poll_until(&mut consumer, 15, Duration::from_secs(10)).await?;
    assert_eq!(again.len(), 15);
    assert!(again.iter().all(|r| r.partition == 0));
    assert_eq!(again[0].offset, 5);

    consumer.seek_to_beginning(std::slice::from_ref(&p1))?;
    assert_eq!(consumer.position(&p1).await?, 0);
    consumer.seek_to_end(std::slice::from_ref(&p1))?;
    assert_eq!(consumer.position(&p1).await?, 20);
    consumer.seek_to_beginning(&[])?;

    consumer.pause(std::slice::from_ref(&p0))?;
    assert_eq!(consumer.paused(), vec![p0.clone()]);
    let only_p1 = poll_until(&mut consumer, 20, Duration::from_secs(10)).await?;
    assert_eq!(only_p1.len(), 20);
    assert!(
        only_p1.iter().all(|r| r.partition == 1),
        "paused partition returns nothing"
    );
    assert!(consumer.poll(Duration::from_millis(300)).await?.is_empty());
    assert_eq!(consumer.position(&p0).await?, 0);

    consumer.resume(std::slice::from_ref(&p0))?;
    let p0_records = poll_until(&mut consumer, 20, Duration::from_secs(10)).await?;
    assert_eq!(p0_records.len(), 20);
    assert!(p0_records.iter().all(|r| r.partition == 0));
    assert!(consumer.seek(&TopicPartition::new("other", 0), 1).is_err());

    // New records arrive while polling (long poll wakes up).
    let pending = producer
        .send(ProducerRecord::new("seeking").partition(1).value("late"))
        .await?;
    let late = poll_until(&mut consumer, 1, Duration::from_secs(10)).await?;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].offset, pending.await?.offset);
    producer.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topics_configs_offsets_and_groups() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;

    let cluster = admin.describe_cluster().await?;
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port as u16, broker.addr.port());

    admin
        .create_topics(&[NewTopic::new("admin-t", 2).config("retention.ms", "3600000")])
        .await?;
    let err = admin
        .create_topics(&[NewTopic::new("admin-t", 2)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TopicAlreadyExists), "{err}");
    assert!(admin
        .list_topics(false)
        .await?
        .contains(&"admin-t".to_string()));
    let described = admin.describe_topics(&["admin-t"]).await?;
    assert_eq!(described[0].partitions.len(), 2);
    assert!(described[0].partitions.iter().all(|p| p.leader >= 0));
    let err = admin.describe_topics(&["no-such-topic"]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::UnknownTopicOrPartition),
        "{err}"
    );

    let resource = ConfigResource::Topic("admin-t".into());
    let value_of = |entries: &[(ConfigResource, Vec<fjord_client::ConfigEntry>)], key: &str| {
        entries[0]
            .1
            .iter()
            .find(|e| e.name == key)
            .and_then(|e| e.value.clone())
    };
    let configs = admin
        .describe_configs(std::slice::from_ref(&resource))
        .await?;
    assert_eq!(
        value_of(&configs, "retention.ms").as_deref(),
        Some("3600000")
    );
    admin
        .incremental_alter_configs(
            &resource,
            &[AlterConfigOp::Set("retention.ms".into(), "7200000".into())],
        )
        .await?;
    let configs = admin
        .describe_configs(std::slice::from_ref(&resource))
        .await?;
    assert_eq!(
        value_of(&configs, "retention.ms").as_deref(),
        Some("7200000")
    );
    admin
        .incremental_alter_configs(&resource, &[AlterConfigOp::Delete("retention.ms".into())])
        .await?;
    let configs = admin
        .describe_configs(std::slice::from_ref(&resource))
        .await?;
    assert_ne!(
        value_of(&configs, "retention.ms").as_deref(),
        Some("7200000")
    );
    let broker_configs = admin
        .describe_configs(&[ConfigResource::Broker(cluster.brokers[0].id)])
        .await?;
    assert!(!broker_configs[0].1.is_empty());

    admin.create_partitions("admin-t", 4).await?;
    assert_eq!(
        admin.describe_topics(&["admin-t"]).await?[0]
            .partitions
            .len(),
        4
    );

    // Offsets: earliest/latest/by timestamp, delete records.
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let mut stamps = Vec::new();
    for i in 0..10i64 {
        let ts = 1_700_000_000_000 + i * 1000;
        producer
            .send(
                ProducerRecord::new("admin-t")
                    .partition(0)
                    .value("v")
                    .timestamp(ts),
            )
            .await?
            .await?;
        stamps.push(ts);
    }
    producer.close().await?;
    let tp = TopicPartition::new("admin-t", 0);
    let listed = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Earliest)])
        .await?;
    assert_eq!(listed[&tp].offset, 0);
    let listed = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Latest)])
        .await?;
    assert_eq!(listed[&tp].offset, 10);
    let listed = admin
        .list_offsets(&[(tp.clone(), OffsetSpec::Timestamp(stamps[4]))])
        .await?;
    assert_eq!(listed[&tp].offset, 4);
    let low = admin
        .delete_records(&BTreeMap::from([(tp.clone(), 3)]))
        .await?;
    assert_eq!(low[&tp], 3);
    assert_eq!(
        admin
            .list_offsets(&[(tp.clone(), OffsetSpec::Earliest)])
            .await?[&tp]
            .offset,
        3
    );

    // Groups: a consumer commits and leaves; list, describe, alter offsets, delete.
    let mut consumer = Consumer::new(consumer_config(&broker).group_id("admin-g"))?;
    consumer.subscribe(&["admin-t"], None)?;
    let records = poll_until(&mut consumer, 7, Duration::from_secs(20)).await?;
    assert_eq!(records.len(), 7);
    let described = admin.describe_groups(&["admin-g"]).await?;
    assert_eq!(described[0].state, "Stable");
    assert_eq!(described[0].members.len(), 1);
    assert_eq!(described[0].members[0].assignment.len(), 4);
    // A live group cannot be deleted.
    let err = admin.delete_groups(&["admin-g"]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NonEmptyGroup), "{err}");
    consumer.commit_sync().await?;
    consumer.close().await?;
    let groups = admin.list_groups().await?;
    assert!(
        groups
            .iter()
            .any(|g| g.group_id == "admin-g" && g.protocol_type == "consumer"),
        "{groups:?}"
    );
    assert_eq!(admin.describe_groups(&["admin-g"]).await?[0].state, "Empty");
    let offsets = admin.list_consumer_group_offsets("admin-g").await?;
    assert_eq!(offsets.get(&tp), Some(&10));
    admin
        .alter_consumer_group_offsets("admin-g", &BTreeMap::from([(tp.clone(), 5)]))
        .await?;
    assert_eq!(
        admin.list_consumer_group_offsets("admin-g").await?.get(&tp),
        Some(&5)
    );
    admin.delete_groups(&["admin-g"]).await?;
    assert!(!admin
        .list_groups()
        .await?
        .iter()
        .any(|g| g.group_id == "admin-g"));

    admin.delete_topics(&["admin-t"]).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin
        .list_topics(false)
        .await?
        .contains(&"admin-t".to_string())
    {
        assert!(Instant::now() < deadline, "topic still listed after delete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_sync_and_errors_without_a_broker() -> TestResult {
    let broker = TestBroker::start().await?;
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let p = producer.clone();
    let md =
        tokio::task::spawn_blocking(move || p.send_sync(ProducerRecord::new("sync").value("v")))
            .await??;
    assert_eq!(md.offset, 0);
    let md = producer.send_sync(ProducerRecord::new("sync").value("v2"))?;
    assert_eq!(md.offset, 1);
    producer.close().await?;
    broker.stop().await;

    // Nobody listening: send fails after max.block.ms with a retriable timeout.
    let dead = Producer::new(
        ProducerConfig::new("127.0.0.1:1")
            .max_block_ms(300)
            .reconnect_backoff_ms(10),
    )?;
    let err = dead
        .send(ProducerRecord::new("t").value("v"))
        .await
        .unwrap_err();
    assert!(err.is_retriable(), "{err}");
    let err = ConsumerConfig::new("127.0.0.1:1")
        .set("no.such.key", "1")
        .unwrap_err();
    assert!(err.to_string().contains("no.such.key"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_retries_across_a_broker_restart_without_loss_or_duplicates() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let broker = TestBroker::start_at(tempfile::tempdir()?, port).await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "restart", 2).await?;
    drop(admin);
    let producer = Producer::new(
        ProducerConfig::new(broker.bootstrap())
            .linger_ms(1)
            .retry_backoff_ms(20)
            .reconnect_backoff_ms(20)
            .request_timeout_ms(3000)
            .delivery_timeout_ms(60_000),
    )?;
    let n = 20_000;
    let mut deliveries = Vec::with_capacity(n);
    // Restart the broker (clean shutdown, same port and data) while records are queued and
    // in flight.
    let halfway = Arc::new(tokio::sync::Notify::new());
    let restart = {
        let halfway = halfway.clone();
        tokio::spawn(async move {
            halfway.notified().await;
            let dir = broker.stop_keep_dir().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            TestBroker::start_at(dir, port).await
        })
    };
    for i in 0..n {
        let key = format!("key-{}", i % 37);
        deliveries.push(
            producer
                .send(
                    ProducerRecord::new("restart")
                        .key(key)
                        .value(format!("value-{i}"))
                        .header("i", i.to_string()),
                )
                .await?,
        );
        if i == n / 4 {
            halfway.notify_one();
        }
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let restarted = Some(restart.await??);
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;
    let broker = restarted.ok_or("broker was not restarted")?;
    let mut consumer = Consumer::new(consumer_config(&broker))?;
    consumer.assign(&[
        TopicPartition::new("restart", 0),
        TopicPartition::new("restart", 1),
    ])?;
    let records = poll_until(&mut consumer, n, Duration::from_secs(30)).await?;
    // Exactly once and in order per key's partition.
    check_consumed(&records, n, 37, 2);
    assert!(
        consumer.poll(Duration::from_millis(300)).await?.is_empty(),
        "no duplicates"
    );
    broker.stop().await;
    Ok(())
}

/// A TCP proxy in front of the broker whose connections can be cut abruptly (requests in
/// flight are lost mid-way, as when a network path fails).
struct CuttingProxy {
    addr: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl CuttingProxy {
    fn serve(
        listener: tokio::net::TcpListener,
        target: SocketAddr,
    ) -> Result<CuttingProxy, Box<dyn std::error::Error + Send + Sync>> {
        let addr = listener.local_addr()?;
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Ok(CuttingProxy { addr, cut })
    }

    async fn start_on(
        port: u16,
        target: SocketAddr,
    ) -> Result<CuttingProxy, Box<dyn std::error::Error + Send + Sync>> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        Self::serve(listener, target)
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_survives_cut_connections_exactly_once() -> TestResult {
    // The broker advertises the proxy, so every client connection goes through it.
    init_logs();
    let proxy_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let proxy_port = proxy_listener.local_addr()?.port();
    drop(proxy_listener);
    let dir = tempfile::tempdir()?;
    let config = fjord_broker::BrokerConfig::from_sources(
        None,
        &[
            "listeners=PLAINTEXT://127.0.0.1:0".into(),
            format!("advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}"),
            format!("log.dirs={}", dir.path().display()),
        ],
    )?;
    let running = fjord_broker::Broker::open(config)?.serve().await?;
    let target = running.local_addrs()[0];
    let proxy = CuttingProxy::start_on(proxy_port, target).await?;
    let bootstrap = proxy.addr.to_string();
    let admin = Admin::new(AdminConfig::new(bootstrap.clone()))?;
    create_topic(&admin, "cut", 3).await?;
    let producer = Producer::new(
        ProducerConfig::new(bootstrap.clone())
            .linger_ms(1)
            .batch_size(2048)
            .retry_backoff_ms(10)
            .reconnect_backoff_ms(10)
            .request_timeout_ms(5000),
    )?;
    let n = 20_000;
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{}", i % 41);
        deliveries.push(
            producer
                .send(
                    ProducerRecord::new("cut")
                        .key(key)
                        .value(format!("value-{i}"))
                        .header("i", i.to_string()),
                )
                .await?,
        );
        if i % 4000 == 2000 {
            proxy.cut_all();
        }
        if i % 250 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;
    let mut consumer = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait_ms(100),
    )?;
    consumer.assign(
        &(0..3)
            .map(|p| TopicPartition::new("cut", p))
            .collect::<Vec<_>>(),
    )?;
    let records = poll_until(&mut consumer, n, Duration::from_secs(30)).await?;
    check_consumed(&records, n, 41, 3);
    assert!(
        consumer.poll(Duration::from_millis(300)).await?.is_empty(),
        "no duplicates"
    );
    running.shutdown().await;
    Ok(())
}

/// Throughput figure (run in release: `cargo test --release -p fjord-cli --test client_e2e --
/// --ignored --nocapture throughput`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    let n: usize = std::env::var("FJORD_PERF_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    for (size, partitions) in [(100usize, 1), (1000usize, 1), (100usize, 6)] {
        let topic = format!("perf-{size}-{partitions}");
        create_topic(&admin, &topic, partitions).await?;
        let producer = Producer::new(ProducerConfig::new(broker.bootstrap()).linger_ms(5))?;
        let value = fjord_client::Bytes::from(vec![b'x'; size]);
        // Warm up metadata and the producer id.
        producer
            .send(ProducerRecord::new(topic.clone()).value(value.clone()))
            .await?
            .await?;
        let start = Instant::now();
        for _ in 0..n {
            drop(
                producer
                    .send(ProducerRecord::new(topic.clone()).value(value.clone()))
                    .await?,
            );
        }
        producer.flush().await?;
        let elapsed = start.elapsed();
        println!(
            "produce {n} x {size} B to {partitions} partition(s): {:.0} records/s, {:.1} MB/s ({elapsed:?})",
            n as f64 / elapsed.as_secs_f64(),
            (n * size) as f64 / elapsed.as_secs_f64() / 1e6
        );
        producer.close().await?;
        let mut consumer = Consumer::new(consumer_config(&broker).max_poll_records(5000))?;
        consumer.assign(
            &(0..partitions)
                .map(|p| TopicPartition::new(topic.clone(), p))
                .collect::<Vec<_>>(),
        )?;
        let start = Instant::now();
        let mut got = 0usize;
        while got < n + 1 && start.elapsed() < Duration::from_secs(120) {
            got += consumer.poll(Duration::from_millis(500)).await?.len();
        }
        let elapsed = start.elapsed();
        println!(
            "consume {got} x {size} B: {:.0} records/s ({elapsed:?})",
            got as f64 / elapsed.as_secs_f64()
        );
    }
    broker.stop().await;
    Ok(())
}

/// With small fetches (many per partition, each requested while the previous one is still being
/// drained) every record arrives once and in order, and a seek in the middle discards what was
/// fetched ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetched_fetches_keep_order_and_respect_seeks() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    create_topic(&admin, "prefetch", 1).await?;
    // Batches of about 10 records (batch.size 1 KB), so a 2 KB fetch holds two or three.
    let producer =
        Producer::new(ProducerConfig::new(broker.bootstrap()).set("batch.size", "1024")?)?;
    for i in 0..2000 {
        drop(
            producer
                .send(
                    ProducerRecord::new("prefetch")
                        .value(format!("value-{i:06}-{}", "x".repeat(60))),
                )
                .await?,
        );
    }
    producer.flush().await?;
    let tp = TopicPartition::new("prefetch", 0);
    let mut consumer = Consumer::new(
        consumer_config(&broker)
            .set("max.partition.fetch.bytes", "2048")?
            .set("max.poll.records", "7")?,
    )?;
    consumer.assign(std::slice::from_ref(&tp))?;
    let first = poll_until(&mut consumer, 700, Duration::from_secs(20)).await?;
    let offsets: Vec<i64> = first.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    assert!(offsets.len() >= 700);

    // Back to 100: what was fetched ahead of the old position must not leak into the result.
    consumer.seek(&tp, 100)?;
    let rest = poll_until(&mut consumer, 1900, Duration::from_secs(20)).await?;
    let offsets: Vec<i64> = rest.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (100..2000).collect::<Vec<_>>());
    for r in &rest {
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        assert!(
            value.starts_with(&format!("value-{:06}-", r.offset)),
            "{value}"
        );
    }
    assert_eq!(consumer.position(&tp).await?, 2000);
    consumer.close().await?;
    producer.close().await?;
    Ok(())
}
