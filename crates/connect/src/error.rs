//! The crate's error type.

use fjord_client::ClientError;

/// Everything that can go wrong in Fjord Connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A configuration value is missing or invalid; names the key.
    #[error("invalid value for configuration {key}: {message}")]
    Config {
        /// The configuration key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A record could not be converted to or from bytes.
    #[error("conversion failed: {0}")]
    Conversion(String),
    /// A transformation could not be applied to a record.
    #[error("transformation failed: {0}")]
    Transform(String),
    /// A named connector does not exist.
    #[error("connector {0} not found")]
    NotFound(String),
    /// A connector with this name already exists.
    #[error("connector {0} already exists")]
    AlreadyExists(String),
    /// No plugin is installed under this class name.
    #[error("failed to find any class that implements Connector and which name matches {0}")]
    UnknownPlugin(String),
    /// The Kafka client failed.
    #[error("kafka client: {0}")]
    Client(#[from] ClientError),
    /// A connector's external system failed (file, database, HTTP endpoint).
    #[error("{0}")]
    External(String),
    /// Local I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The worker is shutting down or the request cannot be served now.
    #[error("{0}")]
    Unavailable(String),
}

impl ConnectError {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ConnectError> = std::result::Result<T, E>;
