//! Fjord's Kafka client (work in progress).

#[cfg(feature = "wip")]
mod cluster;
#[cfg(feature = "wip")]
pub mod config;
#[cfg(feature = "wip")]
mod conn;
#[cfg(feature = "wip")]
mod error;
#[cfg(feature = "wip")]
pub mod partitioner;

#[cfg(feature = "wip")]
pub use config::{
    Acks, AdminConfig, AssignorKind, ClientConfig, ClientKind, ConsumerConfig, IsolationLevel,
    OffsetReset, ProducerConfig,
};
#[cfg(feature = "wip")]
pub use error::{ClientError, Result};
#[cfg(feature = "wip")]
pub use fjord_protocol::compression::Compression;
