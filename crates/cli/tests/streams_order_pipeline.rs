//! The order-pipeline example (examples/order_pipeline.rs), its own code, against an
//! in-process broker: orders placed while the payment service is down wait in their topic;
//! when it starts, every order is paid, decrements the stock once and gets exactly one
//! notification.

use fjord_client::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod in_process;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/order_pipeline.rs"]
mod order_pipeline;

use in_process::{TestBroker, TestError};

/// Every value of `topic` (3 partitions) so far, reading until `done` holds or 60 s passed.
async fn read_values(
    bootstrap: &str,
    topic: &str,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Result<Vec<Vec<u8>>, TestError> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(bootstrap)
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait_ms(100),
    )?;
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(&tps)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for r in consumer.poll(Duration::from_millis(200)).await? {
            out.push(r.value.clone().unwrap_or_default().to_vec());
        }
        if done(&out) || Instant::now() >= deadline {
            break;
        }
    }
    consumer.close().await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_while_payment_is_down_are_paid_and_notified_once() -> Result<(), TestError> {
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    order_pipeline::setup(&bootstrap)
        .await
        .map_err(|e| e.to_string())?;
    let inventory = order_pipeline::start(
        &bootstrap,
        "inventory-service",
        order_pipeline::inventory_service()?,
    )
    .await?;
    let notification = order_pipeline::start(
        &bootstrap,
        "notification-service",
        order_pipeline::notification_service()?,
    )
    .await?;

    // The payment service is down while the orders come in.
    let placed = order_pipeline::order_service(&bootstrap, 12, Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    let orders = read_values(&bootstrap, "orders", |v| v.len() >= 12).await?;
    assert_eq!(orders.len(), 12, "the orders wait in their topic");
    let payments = read_values(&bootstrap, "payments", |_| true).await?;
    assert!(payments.is_empty(), "nothing is paid while payment is down");

    let payment = order_pipeline::start(
        &bootstrap,
        "payment-service",
        order_pipeline::payment_service()?,
    )
    .await?;
    let notices = read_values(&bootstrap, "notifications", |v| v.len() >= 12).await?;
    let mut per_order: BTreeMap<String, usize> = BTreeMap::new();
    for n in &notices {
        let text = String::from_utf8(n.clone())?;
        let order = placed
            .iter()
            .find(|o| text.contains(&format!("order {} ", o.order_id)))
            .ok_or_else(|| format!("notification for an unknown order: {text}"))?;
        assert!(text.contains(&order.customer), "{text}");
        *per_order.entry(order.order_id.clone()).or_insert(0) += 1;
    }
    assert_eq!(per_order.len(), 12, "every order notified: {per_order:?}");
    assert!(per_order.values().all(|n| *n == 1), "{per_order:?}");

    // The stock KTable took each paid order off once: the last update per item shows
    // 100 (the opening stock) minus the quantities ordered.
    let updates = read_values(&bootstrap, "inventory-updates", |v| v.len() >= 12).await?;
    let mut remaining: BTreeMap<String, i64> = BTreeMap::new();
    for u in &updates {
        let u: order_pipeline::InventoryUpdated = serde_json::from_slice(u)?;
        // Nothing is restocked during the run, so the lowest level is the latest one.
        let level = remaining.entry(u.item.clone()).or_insert(i64::MAX);
        *level = (*level).min(u.remaining);
    }
    for item in order_pipeline::ITEMS {
        let ordered: i64 = placed
            .iter()
            .filter(|o| o.item == item)
            .map(|o| o.quantity)
            .sum();
        assert_eq!(remaining.get(item), Some(&(100 - ordered)), "{item}");
    }
    for app in [payment, inventory, notification] {
        app.close().await?;
    }
    broker.stop().await;
    Ok(())
}
