//! The crate's error type.

use fjord_client::ClientError;

/// Errors of topology building, processing, state stores and the runtime.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// A key or value could not be encoded or decoded.
    #[error("serialization error: {0}")]
    Serde(String),
    /// The topology is not valid (unknown store, duplicate name, missing source, ...).
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A configuration key is missing or has a bad value.
    #[error("invalid config {key}: {reason}")]
    Config {
        /// The configuration key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A state store failed (I/O of the persistent store, unknown store name, ...).
    #[error("state store {store}: {reason}")]
    Store {
        /// The store's name.
        store: String,
        /// What failed.
        reason: String,
    },
    /// The Kafka client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A file-system operation of the state directory failed.
    #[error("state directory: {0}")]
    Io(#[from] std::io::Error),
    /// The application was closed or its processing thread stopped.
    #[error("the streams application is not running: {0}")]
    NotRunning(String),
}

impl StreamsError {
    pub(crate) fn serde(what: impl std::fmt::Display) -> Self {
        StreamsError::Serde(what.to_string())
    }

    pub(crate) fn store(store: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Store {
            store: store.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn config(key: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Config {
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;
