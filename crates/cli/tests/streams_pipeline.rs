//! Fjord Streams pipelines against an in-process broker: a service that is stopped for a
//! while catches up from its committed offsets without losing or repeating an order, and a
//! windowed aggregation fed through a global-table join produces per-window counts that
//! interactive queries also see.

use fjord_client::{
    Admin, AdminConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use fjord_streams::{
    JoinWindows, KafkaStreams, StreamsBuilder, StreamsConfig, TimeWindows, Window,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod in_process;

use in_process::{TestBroker, TestError};

type TestResult = Result<(), TestError>;

fn config(
    broker: &TestBroker,
    app: &str,
    dir: &tempfile::TempDir,
) -> fjord_streams::Result<StreamsConfig> {
    StreamsConfig::new(app, broker.bootstrap())
        .state_dir(dir.path())
        .commit_interval(Duration::from_millis(200))
        .set("consumer.fetch.max.wait.ms", "100")
}

async fn produce(broker: &TestBroker, records: Vec<ProducerRecord>) -> TestResult {
    let producer = Producer::new(ProducerConfig::new(broker.bootstrap()))?;
    let mut deliveries = Vec::new();
    for r in records {
        deliveries.push(producer.send(r).await?);
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;
    Ok(())
}

/// Every (key, value) of `topic` so far, reading until `done` holds or 60 s passed.
async fn read_all(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    done: impl Fn(&[(String, Vec<u8>)]) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, TestError> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(broker.bootstrap())
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait_ms(100),
    )?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&out) && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await? {
            let key = String::from_utf8(r.key.clone().unwrap_or_default().to_vec())?;
            out.push((key, r.value.clone().unwrap_or_default().to_vec()));
        }
    }
    consumer.close().await?;
    Ok(out)
}

fn payment_service() -> fjord_streams::Result<fjord_streams::Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("orders")
        .map_values(|order| format!("paid {order}"))
        .to("payments");
    b.build()
}

fn orders(from: usize, to: usize) -> Vec<ProducerRecord> {
    (from..to)
        .map(|i| {
            ProducerRecord::new("orders")
                .key(format!("order-{i}"))
                .value(format!("item-{}", i % 5))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_service_catches_up_without_losing_or_repeating_orders() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    admin
        .create_topics(&[NewTopic::new("orders", 3), NewTopic::new("payments", 3)])
        .await?;
    let dir = tempfile::tempdir()?;

    let mut payment = KafkaStreams::new(
        payment_service()?,
        config(&broker, "payment-service", &dir)?,
    );
    payment.start().await?;
    produce(&broker, orders(0, 20)).await?;
    read_all(&broker, "payments", 3, |p| p.len() >= 20).await?;
    payment.close().await?;

    // The payment service is down: orders pile up in their topic.
    produce(&broker, orders(20, 50)).await?;

    let mut payment = KafkaStreams::new(
        payment_service()?,
        config(&broker, "payment-service", &dir)?,
    );
    payment.start().await?;
    let paid = read_all(&broker, "payments", 3, |p| p.len() >= 50).await?;
    let mut per_order: BTreeMap<String, usize> = BTreeMap::new();
    for (k, v) in &paid {
        assert!(String::from_utf8(v.clone())?.starts_with("paid item-"));
        *per_order.entry(k.clone()).or_insert(0) += 1;
    }
    assert_eq!(per_order.len(), 50, "every order paid");
    assert!(
        per_order.values().all(|n| *n == 1),
        "no order paid twice: {per_order:?}"
    );
    // The restarted instance resumed from the committed offsets: only the 30 new orders.
    assert_eq!(payment.processed(), 30);
    payment.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_counts_through_a_global_table_join() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    admin
        .create_topics(&[
            NewTopic::new("users", 1),
            NewTopic::new("clicks", 2),
            NewTopic::new("region-views", 2),
        ])
        .await?;
    // The global table: user → region.
    produce(
        &broker,
        vec![
            ProducerRecord::new("users").key("ada").value("eu"),
            ProducerRecord::new("users").key("bob").value("us"),
        ],
    )
    .await?;

    let b = StreamsBuilder::new();
    let users = b.global_table::<String, String>("users", "users-store");
    b.stream::<String, String>("clicks")
        .join_global(&users, |user, _| user.clone(), |_, region| region.clone())
        .select_key(|_, region| region.clone())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
        .count("views-per-region")
        .to_stream()
        .map(|w, n| (format!("{}@{}", w.key, w.window.start), *n))
        .to("region-views");
    let dir = tempfile::tempdir()?;
    let mut app = KafkaStreams::new(b.build()?, config(&broker, "regions", &dir)?);
    app.start().await?;

    // Minute 0: ada ×3, bob ×1; minute 1: ada ×1; a click of an unknown user joins nothing.
    let click = |user: &str, ts: i64| {
        ProducerRecord::new("clicks")
            .key(user.to_string())
            .value("/")
            .timestamp(ts)
    };
    produce(
        &broker,
        vec![
            click("ada", 1_000),
            click("bob", 2_000),
            click("ada", 3_000),
            click("ada", 59_999),
            click("ada", 60_000),
            click("eve", 4_000),
        ],
    )
    .await?;
    let want: BTreeMap<String, i64> = [("eu@0", 3), ("us@0", 1), ("eu@60000", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let latest = |records: &[(String, Vec<u8>)]| -> BTreeMap<String, i64> {
        records
            .iter()
            .filter_map(|(k, v)| {
                Some((k.clone(), i64::from_be_bytes(v.as_slice().try_into().ok()?)))
            })
            .collect()
    };
    let got = read_all(&broker, "region-views", 2, |r| latest(r) == want).await?;
    assert_eq!(latest(&got), want);

    // Interactive query of the (persistent) window store.
    let store = app.window_store::<String, i64>("views-per-region");
    assert_eq!(
        store.fetch(&"eu".to_string(), 0, 120_000)?,
        vec![
            (
                Window {
                    start: 0,
                    end: 60_000
                },
                3
            ),
            (
                Window {
                    start: 60_000,
                    end: 120_000
                },
                1
            )
        ]
    );
    assert_eq!(
        app.store::<String, String>("users-store")
            .get(&"bob".to_string())?,
        Some("us".to_string())
    );
    app.close().await?;
    broker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_stream_left_join_against_a_broker() -> TestResult {
    let broker = TestBroker::start().await?;
    let admin = Admin::new(AdminConfig::new(broker.bootstrap()))?;
    admin
        .create_topics(&[
            NewTopic::new("placed", 1),
            NewTopic::new("paid", 1),
            NewTopic::new("order-status", 1),
        ])
        .await?;
    let b = StreamsBuilder::new();
    let placed = b.stream::<String, String>("placed");
    let paid = b.stream::<String, String>("paid");
    placed
        .left_join(
            &paid,
            |item, payment| match payment {
                Some(p) => format!("{item}: paid by {p}"),
                None => format!("{item}: unpaid"),
            },
            JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10)),
        )
        .to("order-status");
    let dir = tempfile::tempdir()?;
    let mut app = KafkaStreams::new(b.build()?, config(&broker, "status", &dir)?);
    app.start().await?;
    let at = |topic: &str, k: &str, v: &str, ts: i64| {
        ProducerRecord::new(topic)
            .key(k.to_string())
            .value(v.to_string())
            .timestamp(ts)
    };
    produce(
        &broker,
        vec![
            at("placed", "o1", "book", 1_000),
            at("placed", "o2", "lamp", 2_000),
            at("paid", "o1", "card", 3_000),
        ],
    )
    .await?;
    // The match is emitted as soon as the payment arrives; o2 waits for its window to close.
    let first = read_all(&broker, "order-status", 1, |r| !r.is_empty()).await?;
    assert_eq!(first.len(), 1);
    // Stream time 20 s closes o2's window (2 s + 10 s) without a payment.
    produce(&broker, vec![at("placed", "o3", "mug", 20_000)]).await?;
    let want = vec![
        ("o1".to_string(), "book: paid by card".to_string()),
        ("o2".to_string(), "lamp: unpaid".to_string()),
    ];
    let got = read_all(&broker, "order-status", 1, |r| r.len() >= 2).await?;
    let got: Vec<(String, String)> = got
        .into_iter()
        .map(|(k, v)| Ok((k, String::from_utf8(v)?)))
        .collect::<Result<_, TestError>>()?;
    assert_eq!(got, want);
    app.close().await?;
    broker.stop().await;
    Ok(())
}
