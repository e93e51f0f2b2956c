//! The order pipeline of an e-commerce shop, as four services that talk only through topics:
//!
//! * **orders** (a plain producer) emits `OrderPlaced` to `orders`;
//! * **payment** (a streams app) consumes `orders` and emits `PaymentSucceeded` to `payments`;
//! * **inventory** (a streams app) keeps the stock per item in a KTable (restocks from
//!   `restocks` plus one decrement per paid order) and emits `InventoryUpdated` to
//!   `inventory-updates`;
//! * **notification** (a streams app) emits one message per completed order to
//!   `notifications`.
//!
//! The order service places an order every 500 ms until the run ends.
//!
//! ```text
//! cargo run -p fjord-streams --example order_pipeline -- [bootstrap] [service] [seconds]
//! ```
//! `service` is `all` (default: every service in this process) or a comma-separated list of
//! `orders`, `payment`, `inventory`, `notification`; `seconds` defaults to 20. To watch an
//! outage, run `orders,inventory,notification 120` in one terminal and `payment 120` in
//! another, stop the payment service (Ctrl-C) while orders keep coming, and start it again:
//! the orders waited in `orders`, and it catches up from its committed offsets, so every
//! order still gets its notification, late but not lost.

use fjord_client::{
    Admin, AdminConfig, ErrorCode, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use fjord_streams::{JsonValue, KafkaStreams, StreamsBuilder, StreamsConfig, Topology};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderPlaced {
    pub(crate) order_id: String,
    pub(crate) customer: String,
    pub(crate) item: String,
    pub(crate) quantity: i64,
    pub(crate) amount_cents: i64,
}
impl JsonValue for OrderPlaced {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PaymentSucceeded {
    order_id: String,
    customer: String,
    item: String,
    quantity: i64,
    amount_cents: i64,
}
impl JsonValue for PaymentSucceeded {}

/// Stock of one item, and the order that changed it last (none for a restock).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stock {
    level: i64,
    last_order: Option<(String, String)>,
}
impl JsonValue for Stock {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StockChange {
    delta: i64,
    order: Option<(String, String)>,
}
impl JsonValue for StockChange {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InventoryUpdated {
    pub(crate) order_id: String,
    pub(crate) customer: String,
    pub(crate) item: String,
    pub(crate) remaining: i64,
}
impl JsonValue for InventoryUpdated {}

pub(crate) const ITEMS: [&str; 3] = ["book", "lamp", "mug"];
const TOPICS: [&str; 5] = [
    "orders",
    "payments",
    "restocks",
    "inventory-updates",
    "notifications",
];

pub(crate) fn payment_service() -> fjord_streams::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, OrderPlaced>("orders")
        .map_values(|o| PaymentSucceeded {
            order_id: o.order_id.clone(),
            customer: o.customer.clone(),
            item: o.item.clone(),
            quantity: o.quantity,
            amount_cents: o.amount_cents,
        })
        .peek(|id, p| println!("[payment] charged {} cents for {id}", p.amount_cents))
        .to("payments");
    b.build()
}

pub(crate) fn inventory_service() -> fjord_streams::Result<Topology> {
    let b = StreamsBuilder::new();
    let restocks = b
        .stream::<String, i64>("restocks")
        .map_values(|n| StockChange {
            delta: *n,
            order: None,
        });
    let sales = b
        .stream::<String, PaymentSucceeded>("payments")
        .map(|_, p| {
            (
                p.item.clone(),
                StockChange {
                    delta: -p.quantity,
                    order: Some((p.order_id.clone(), p.customer.clone())),
                },
            )
        });
    // The stock KTable: restocks and sales, grouped by item (sales are repartitioned).
    let stock = restocks.merge(&sales).group_by_key().aggregate(
        Stock::default,
        |_, change, stock| Stock {
            level: stock.level + change.delta,
            last_order: change.order.clone(),
        },
        "stock",
    );
    stock
        .to_stream()
        .flat_map(|item, s| {
            s.last_order.clone().map(|(order_id, customer)| {
                (
                    order_id.clone(),
                    InventoryUpdated {
                        order_id,
                        customer,
                        item: item.clone(),
                        remaining: s.level,
                    },
                )
            })
        })
        .peek(|id, u| println!("[inventory] {id}: {} left of {}", u.remaining, u.item))
        .to("inventory-updates");
    b.build()
}

pub(crate) fn notification_service() -> fjord_streams::Result<Topology> {
    let b = StreamsBuilder::new();
    b.stream::<String, InventoryUpdated>("inventory-updates")
        .map_values(|u| {
            format!(
                "Dear {}, your order {} ({}) is on its way.",
                u.customer, u.order_id, u.item
            )
        })
        .peek(|_, msg| println!("[notification] {msg}"))
        .to("notifications");
    b.build()
}

pub(crate) async fn order_service(
    bootstrap: &str,
    count: usize,
    interval: Duration,
) -> Result<Vec<OrderPlaced>, Box<dyn std::error::Error>> {
    let producer = Producer::new(ProducerConfig::new(bootstrap))?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let mut placed = Vec::new();
    for i in 0..count {
        let order = OrderPlaced {
            order_id: format!("order-{run}-{i}"),
            customer: format!("customer-{}", i % 4),
            item: ITEMS[i % ITEMS.len()].to_string(),
            quantity: 1 + (i % 2) as i64,
            amount_cents: 1_999 + 100 * i as i64,
        };
        let value = serde_json::to_vec(&order)?;
        producer
            .send(
                ProducerRecord::new("orders")
                    .key(order.order_id.clone())
                    .value(value),
            )
            .await?
            .await?;
        println!("[orders] placed {}", order.order_id);
        placed.push(order);
        tokio::time::sleep(interval).await;
    }
    producer.close().await?;
    Ok(placed)
}

pub(crate) async fn setup(bootstrap: &str) -> Result<(), Box<dyn std::error::Error>> {
    let admin = Admin::new(AdminConfig::new(bootstrap))?;
    for topic in TOPICS {
        match admin.create_topics(&[NewTopic::new(topic, 3)]).await {
            Ok(()) => {
                if topic == "restocks" {
                    // Opening stock, once per broker.
                    let producer = Producer::new(ProducerConfig::new(bootstrap))?;
                    for item in ITEMS {
                        producer
                            .send(
                                ProducerRecord::new("restocks")
                                    .key(item)
                                    .value(100i64.to_be_bytes().to_vec()),
                            )
                            .await?
                            .await?;
                    }
                    producer.close().await?;
                }
            }
            Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(crate) async fn start(
    bootstrap: &str,
    app: &str,
    topology: Topology,
) -> fjord_streams::Result<KafkaStreams> {
    // One state directory per process, so several instances can run on one machine.
    let state_dir = std::env::temp_dir().join(format!("fjord-streams-{}", std::process::id()));
    let config = StreamsConfig::new(app, bootstrap)
        .commit_interval(Duration::from_millis(500))
        .state_dir(state_dir);
    let mut streams = KafkaStreams::new(topology, config);
    streams.start().await?;
    Ok(streams)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let service = args.next().unwrap_or_else(|| "all".into());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    setup(&bootstrap).await?;

    let mut apps = Vec::new();
    let wanted = |s: &str| service == "all" || service.split(',').any(|x| x == s);
    if wanted("payment") {
        apps.push(start(&bootstrap, "payment-service", payment_service()?).await?);
    }
    if wanted("inventory") {
        apps.push(start(&bootstrap, "inventory-service", inventory_service()?).await?);
    }
    if wanted("notification") {
        apps.push(start(&bootstrap, "notification-service", notification_service()?).await?);
    }
    let orders = async {
        if wanted("orders") {
            if let Err(e) = order_service(&bootstrap, usize::MAX, Duration::from_millis(500)).await
            {
                eprintln!("order service failed: {e}");
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        _ = orders => {}
    }
    for app in apps {
        app.close().await?;
    }
    Ok(())
}
