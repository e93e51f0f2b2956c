//! The one error type of the client.

use fjord_common::{ErrorCode, TopicPartition};
use thiserror::Error;

/// Everything that can go wrong in the producer, consumer or admin client.
///
/// Errors are cheap to clone (a failed batch hands the same error to every record in it).
/// [`ClientError::is_retriable`] says whether trying again may succeed, and
/// [`ClientError::code`] gives Kafka's error code where there is one.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A configuration key that no Kafka client knows (or that this client does not support).
    #[error("unknown configuration key `{0}`")]
    UnknownConfig(String),
    /// A configuration value that does not parse or is out of range.
    #[error("invalid value `{value}` for configuration `{key}`: {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{code}{}{}", context_suffix(.context), message_suffix(.message))]
    Kafka {
        /// The error code.
        code: ErrorCode,
        /// The broker's error message, when it sent one.
        message: Option<String>,
        /// What the client was doing (a topic-partition, a group, an API).
        context: String,
    },
    /// A socket failed, or the connection closed with requests in flight.
    #[error("network error talking to {broker}: {message}")]
    Network {
        /// The broker address or node id.
        broker: String,
        /// What happened.
        message: String,
    },
    /// A request got no answer within `request.timeout.ms`, or an operation did not finish
    /// within its deadline (`max.block.ms`, `delivery.timeout.ms`, `default.api.timeout.ms`).
    #[error("timed out: {0}")]
    Timeout(String),
    /// A frame that does not decode, or a request that does not encode.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No version of an API is supported by both the broker and this client.
    #[error("the broker does not support {api} in any version this client speaks")]
    UnsupportedVersion {
        /// The API name.
        api: String,
    },
    /// A record (or request) is larger than a configured or broker limit.
    #[error("record of {size} bytes is larger than {limit} (`{key}`)")]
    RecordTooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
        /// The configuration key that sets the limit.
        key: &'static str,
    },
    /// A partition has no committed offset and `auto.offset.reset=none`.
    #[error("no committed offset for {0} and auto.offset.reset=none")]
    NoOffsetForPartition(TopicPartition),
    /// The partition is not assigned to this consumer.
    #[error("{0} is not assigned to this consumer")]
    NotAssigned(TopicPartition),
    /// A caller-side mistake: an argument out of range, an operation in the wrong state.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The producer, consumer or admin client was closed.
    #[error("the client is closed")]
    Closed,
    /// The idempotent producer could not keep its guarantees and stopped.
    #[error("producer is in a fatal state: {0}")]
    Fatal(String),
}

fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" ({context})")
    }
}

fn message_suffix(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl ClientError {
    /// Kafka's error code behind this error, where there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::Timeout(_) => Some(ErrorCode::RequestTimedOut),
            ClientError::Network { .. } => Some(ErrorCode::NetworkException),
            ClientError::UnsupportedVersion { .. } => Some(ErrorCode::UnsupportedVersion),
            ClientError::RecordTooLarge { .. } => Some(ErrorCode::MessageTooLarge),
            ClientError::InvalidConfig { .. } => Some(ErrorCode::InvalidConfig),
            _ => None,
        }
    }

    /// Whether trying again (after a metadata refresh and a back-off) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => code.is_retriable(),
            ClientError::Network { .. } | ClientError::Timeout(_) => true,
            _ => false,
        }
    }

    /// A Kafka error from a response field.
    pub(crate) fn kafka(code: i16, message: Option<&str>, context: impl Into<String>) -> Self {
        ClientError::Kafka {
            code: ErrorCode::from_code(code),
            message: message.map(str::to_string),
            context: context.into(),
        }
    }

    /// `Ok(())` for error code 0, the matching [`ClientError::Kafka`] otherwise.
    pub(crate) fn check(
        code: i16,
        message: Option<&str>,
        context: impl Into<String>,
    ) -> Result<(), Self> {
        if code == 0 {
            Ok(())
        } else {
            Err(Self::kafka(code, message, context))
        }
    }

    pub(crate) fn network(broker: impl ToString, message: impl ToString) -> Self {
        ClientError::Network {
            broker: broker.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn protocol(message: impl ToString) -> Self {
        ClientError::Protocol(message.to_string())
    }

    pub(crate) fn invalid_config(key: &str, value: &str, reason: impl ToString) -> Self {
        ClientError::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl From<fjord_protocol::frame::FrameError> for ClientError {
    fn from(e: fjord_protocol::frame::FrameError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

impl From<fjord_protocol::compression::CompressionError> for ClientError {
    fn from(e: fjord_protocol::compression::CompressionError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

impl From<fjord_protocol::batch::BatchError> for ClientError {
    fn from(e: fjord_protocol::batch::BatchError) -> Self {
        ClientError::Kafka {
            code: ErrorCode::CorruptMessage,
            message: Some(e.to_string()),
            context: "fetched record batch".into(),
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_follows_the_error_code() {
        let e = ClientError::kafka(6, Some("moved"), "t-0");
        assert!(e.is_retriable());
        assert_eq!(e.code(), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(e.to_string(), "NOT_LEADER_OR_FOLLOWER (6) (t-0): moved");
        let e = ClientError::kafka(40, None, "");
        assert!(!e.is_retriable());
        assert!(ClientError::Timeout("x".into()).is_retriable());
        assert!(!ClientError::UnknownConfig("foo".into()).is_retriable());
        assert!(ClientError::UnknownConfig("foo.bar".into())
            .to_string()
            .contains("foo.bar"));
    }
}
