//! `fjord-client`: an asynchronous Kafka producer, consumer and admin client on tokio.
//!
//! It speaks only the Kafka wire protocol, so it works the same against Fjord and Apache
//! Kafka: every connection negotiates API versions with ApiVersions and uses the highest
//! version both sides support. Configuration uses Kafka's key names and Java-client defaults
//! ([`ClientConfig`], with typed builders [`ProducerConfig`], [`ConsumerConfig`],
//! [`AdminConfig`]); unknown keys are errors that name the key.
//!
//! # Design
//!
//! * **Connections** (`conn`): one TCP connection per broker, requests pipelined with
//!   correlation ids, written directly from the caller's task when the socket accepts them,
//!   responses matched in order by a reader task, `request.timeout.ms` per request (a timeout
//!   closes the connection, as in Java). `cluster` keeps the connections (reconnecting with
//!   `reconnect.backoff.ms` exponential back-off), bootstraps from `bootstrap.servers` and
//!   caches metadata (refreshed after `metadata.max.age.ms` and on stale-metadata errors).
//! * **Producer** ([`Producer`]): records are encoded straight into per-partition v2 batch
//!   buffers (no per-record allocation inside the client); a sender task drains batches that
//!   are full or lingered `linger.ms`, keeps up to `max.in.flight.requests.per.connection`
//!   requests in flight per broker, retries until `delivery.timeout.ms`, and runs the
//!   idempotent producer (on by default): producer id, per-partition sequences, epoch bumps.
//!   Keyed records are placed with Java's murmur2 partitioner ([`partitioner`]), keyless ones
//!   stick to a partition per batch (KIP-480).
//! * **Consumer** ([`Consumer`]): the classic group protocol (JoinGroup with the
//!   MEMBER_ID_REQUIRED round trip, SyncGroup, a heartbeat task, LeaveGroup) with the `range`,
//!   `roundrobin` and `cooperative-sticky` assignors, or manual assignment; prefetching
//!   fetches; commits (sync, async, automatic); seeks, pause/resume, offset resets.
//! * **Admin** ([`Admin`]): topics, partitions, configs, cluster, groups and offsets.
//!
//! Errors are one enum, [`ClientError`], with [`ClientError::is_retriable`] and the Kafka
//! [`ErrorCode`] where there is one.
//!
//! # Example
//!
//! ```no_run
//! use fjord_client::{
//!     Acks, Compression, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
//!     ProducerRecord,
//! };
//! use std::time::Duration;
//!
//! # async fn demo() -> fjord_client::Result<()> {
//! let producer = Producer::new(
//!     ProducerConfig::new("127.0.0.1:9092")
//!         .acks(Acks::All)
//!         .compression(Compression::Zstd)
//!         .linger_ms(5),
//! )?;
//! let delivery = producer
//!     .send(ProducerRecord::new("orders").key("customer-1").value("hello"))
//!     .await?;
//! println!("written at offset {}", delivery.await?.offset);
//! producer.close().await?;
//!
//! let mut consumer = Consumer::new(
//!     ConsumerConfig::new("127.0.0.1:9092")
//!         .group_id("billing")
//!         .auto_offset_reset(OffsetReset::Earliest),
//! )?;
//! consumer.subscribe(&["orders"], None)?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//! }
//! consumer.close().await?;
//! # Ok(()) }
//! ```

mod admin;
mod cluster;
pub mod config;
mod conn;
mod consumer;
mod error;
mod offsets;
pub mod partitioner;
mod producer;
mod records;

pub use admin::{
    Admin, AlterConfigOp, BrokerDescription, ClusterDescription, ConfigEntry, ConfigResource,
    GroupDescription, GroupListing, MemberDescription, NewTopic, PartitionDescription,
    TopicDescription,
};
pub use bytes::Bytes;
pub use config::{
    Acks, AdminConfig, AssignorKind, ClientConfig, ClientKind, ConsumerConfig, IsolationLevel,
    OffsetReset, ProducerConfig,
};
pub use consumer::{CommitHandle, Consumer, ConsumerRecord, RebalanceListener};
pub use error::{ClientError, Result};
pub use fjord_common::{ErrorCode, TopicPartition};
pub use fjord_protocol::compression::Compression;
pub use offsets::{ListedOffset, OffsetSpec};
pub use producer::{DeliveryFuture, Producer, ProducerRecord, RecordMetadata};
pub use records::Header;
