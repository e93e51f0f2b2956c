//! The storage error type and its mapping onto Kafka error codes.

use crate::config::ConfigError;
use fjord_common::ErrorCode;
use fjord_protocol::batch::BatchError;
use fjord_protocol::records::RecordsError;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A file system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record batch failed validation (magic, lengths, CRC32C).
    #[error("corrupt record batch: {0}")]
    Corrupt(#[from] BatchError),
    /// Records inside a batch could not be decoded (timestamp look-ups only).
    #[error("cannot decode records: {0}")]
    Decode(#[from] RecordsError),
    /// The request is well-formed but not acceptable (several batches, control batch from a
    /// client, inconsistent record count, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes = {max}")]
    RecordTooLarge {
        /// Batch size in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The batch is larger than `segment.bytes` and could never fit in a segment.
    #[error("record batch of {size} bytes exceeds segment.bytes = {segment_bytes}")]
    BatchLargerThanSegment {
        /// Batch size in bytes.
        size: usize,
        /// The configured segment size.
        segment_bytes: usize,
    },
    /// A CreateTime timestamp is outside `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` of the broker's clock.
    #[error("timestamp {timestamp} is out of range (now {now}): {reason}")]
    InvalidTimestamp {
        /// The offending timestamp.
        timestamp: i64,
        /// The broker's time.
        now: i64,
        /// Which bound was crossed.
        reason: &'static str,
    },
    /// An idempotent producer skipped or reordered sequence numbers.
    #[error("out of order sequence number for producer {producer_id}: expected {expected}, found {found}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence the log expected next.
        expected: i32,
        /// The batch's base sequence.
        found: i32,
    },
    /// An idempotent producer wrote with an epoch older than the one the log knows.
    #[error("producer {producer_id} has epoch {found}, older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The batch's epoch.
        found: i16,
    },
    /// A read or log-start move asked for an offset outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        requested: i64,
        /// The log start offset.
        log_start: i64,
        /// The log end offset.
        log_end: i64,
    },
    /// A follower append carried offsets below the log end or not increasing.
    #[error("unexpected append offset {found}: offsets must be at least {expected_at_least}")]
    UnexpectedAppendOffset {
        /// The smallest acceptable base offset.
        expected_at_least: i64,
        /// The base offset found.
        found: i64,
    },
    /// A configuration value was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A metadata file (checkpoint, snapshot, partition.metadata) could not be parsed.
    #[error("malformed file {}: {reason}", path.display())]
    MalformedFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The on-disk log breaks an invariant that recovery cannot repair (overlapping segments,
    /// the same partition in two log dirs).
    #[error("inconsistent log at {}: {reason}", path.display())]
    InconsistentLog {
        /// The directory involved.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The log was closed or deleted; no further operations are possible.
    #[error("log {0} is closed")]
    Closed(String),
}

impl StorageError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        StorageError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The Kafka error code a broker should answer with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            StorageError::Io { .. }
            | StorageError::MalformedFile { .. }
            | StorageError::InconsistentLog { .. } => ErrorCode::KafkaStorageError,
            StorageError::Corrupt(_) | StorageError::Decode(_) => ErrorCode::CorruptMessage,
            StorageError::InvalidRecord(_) => ErrorCode::InvalidRecord,
            StorageError::RecordTooLarge { .. } => ErrorCode::MessageTooLarge,
            StorageError::BatchLargerThanSegment { .. } => ErrorCode::RecordListTooLarge,
            StorageError::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
            StorageError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            StorageError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            StorageError::UnexpectedAppendOffset { .. } => ErrorCode::UnknownServerError,
            StorageError::Config(_) => ErrorCode::InvalidConfig,
            StorageError::Closed(_) => ErrorCode::NotLeaderOrFollower,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Adds a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
