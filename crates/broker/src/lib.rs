//! The Fjord broker: a thin assembly of the library crates behind Kafka's wire protocol.
//!
//! * [`config`]: `server.properties` keys with Kafka's names and defaults.
//! * `server`: the TCP listener; one task per connection reads frames, handles requests in
//!   order (as Kafka does, one request at a time per connection) and hands responses to a
//!   writer task.
//! * `handlers`: one module per API family, converting wire types to the domain calls of
//!   `fjord-storage`, `fjord-metadata` and `fjord-coordinator` and back. Error codes are
//!   mapped here, at the edge.
//! * `partition`: the broker's view of a partition: its log, leader epoch, high watermark
//!   and the notifier that wakes long-polling fetches when data arrives.
//!
//! Start a broker on a free port with its data in a temporary directory:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fjord_broker::{Broker, BrokerConfig};
//!
//! let config = BrokerConfig::from_sources(None, &[
//!     "listeners=PLAINTEXT://127.0.0.1:0".into(),
//!     "log.dirs=/tmp/fjord-doc".into(),
//! ])?;
//! let broker = Broker::open(config)?;
//! let running = broker.serve().await?;
//! println!("listening on {}", running.local_addrs()[0]);
//! running.shutdown().await;
//! # Ok(()) }
//! ```

mod broker;
pub mod config;
mod errors;
mod fetch_response;
mod groups;
mod handlers;
mod partition;
mod server;

pub use broker::{Broker, BrokerError, RunningBroker};
pub use config::{BrokerConfig, ConfigError};
