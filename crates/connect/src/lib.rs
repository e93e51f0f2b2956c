//! `fjord-connect`: Fjord Connect, Kafka Connect for Fjord. It moves data between topics and
//! other systems from configuration alone, and serves Kafka Connect's REST API so existing
//! tooling works unchanged.
//!
//! # Design
//!
//! * **Connector API** ([`connector`]): a [`Connector`](connector::Connector) validates its
//!   configuration against a declared [`ConfigDef`](config::ConfigDef) and splits the work into
//!   task configurations; [`SourceTask`](connector::SourceTask)s are polled for records
//!   carrying a source partition and offset, [`SinkTask`](connector::SinkTask)s are given
//!   records and flushed.
//! * **Data** ([`data`]): Kafka Connect's schemas, values and structs; [`converter`]s turn them
//!   into record bytes (string, bytes, JSON with or without the `{"schema", "payload"}`
//!   envelope); [`transforms`] are Kafka's single message transforms and predicates, under
//!   their Kafka class names.
//! * **Worker** ([`worker`]): applies connector commands, decides which connectors and tasks
//!   run on this worker and runs task loops with at-least-once delivery: source offsets are
//!   stored only after the producer acknowledged the records, sink offsets are committed only
//!   after `put` and `flush` succeeded.
//! * **Modes**: standalone ([`runtime::start_standalone`], offsets in a local file) and
//!   distributed ([`distributed::start_distributed`], workers sharing a `group.id`, configs,
//!   offsets and statuses in compacted topics).
//! * **REST** ([`rest`]): Kafka Connect's endpoints, JSON shapes and error bodies, on axum.
//! * **Built-in connectors**: [`file`](mod@file) (FileStreamSource/Sink), [`postgres`] (source and
//!   sink, like the JDBC connectors), [`http_sink`].
//!
//! Only `fjord-client` is used from Fjord (DESIGN.md allows common, protocol and client):
//! the runtime is an ordinary Kafka client application.
//!
//! # Example
//!
//! Configure a chain of transforms the way a connector's properties do, and apply it:
//!
//! ```
//! use fjord_connect::config::parse_properties;
//! use fjord_connect::data::{ConnectRecord, Value};
//! use fjord_connect::transforms::TransformChain;
//!
//! let props = parse_properties(
//!     "transforms=route\n\
//!      transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter\n\
//!      transforms.route.regex=raw-(.*)\n\
//!      transforms.route.replacement=$1\n",
//! );
//! let chain = TransformChain::from_config(&props)?;
//! let record = chain
//!     .apply(ConnectRecord::new("raw-orders", Value::from("hello")), None)?
//!     .expect("not filtered");
//! assert_eq!(record.topic, "orders");
//! # Ok::<(), fjord_connect::ConnectError>(())
//! ```
//!
//! A standalone worker with a file source (needs a broker, so not run here):
//!
//! ```no_run
//! # async fn demo() -> fjord_connect::Result<()> {
//! use fjord_connect::config::parse_properties;
//! let worker = parse_properties("bootstrap.servers=127.0.0.1:9092\nlisteners=http://127.0.0.1:8083\n");
//! let source = parse_properties(
//!     "name=local-file-source\nconnector.class=FileStreamSource\nfile=/tmp/in.txt\ntopic=lines\n",
//! );
//! let running = fjord_connect::runtime::start_standalone(worker, vec![source]).await?;
//! println!("REST API on {}", running.url());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod connector;
pub mod converter;
pub mod data;
pub mod distributed;
mod error;
pub mod file;
pub mod http;
pub mod http_sink;
pub mod offsets;
pub mod plugins;
pub mod postgres;
pub mod rest;
pub mod runtime;
pub mod transforms;
pub mod worker;

pub use error::{ConnectError, Result};
