//! Fjord's storage engine: one segmented, append-only log per partition, laid out on disk
//! exactly like Kafka's so that operators recognise it, plus the [`LogManager`] that owns all
//! logs of a broker.
//!
//! Everything here is synchronous (no async runtime): the broker wraps each [`Log`] in a
//! [`SharedLog`] (`Arc<parking_lot::RwLock<Log>>`). Reads take `&self` and only look up
//! indexes; they return a [`FileSlice`] that the caller copies (or sends) *outside* the lock.
//! Appends take `&mut self` and do no per-record work: validate the CRC, patch the header,
//! one positioned write, maybe an index entry.
//!
//! # Layout
//! ```text
//! <log.dir>/
//!   recovery-point-offset-checkpoint     "0\n<n>\n<topic> <partition> <offset>\n..."
//!   log-start-offset-checkpoint          same format
//!   .kafka_cleanshutdown                 present only between a clean shutdown and the next start
//!   <topic>-<partition>/
//!     00000000000000000000.log           record batches, exactly their wire bytes
//!     00000000000000000000.index         (relative offset u32, position u32) every ~index.interval.bytes
//!     00000000000000000000.timeindex     (max timestamp i64, relative offset u32)
//!     00000000000000001234.snapshot      idempotent-producer state below offset 1234
//!     leader-epoch-checkpoint            "0\n<n>\n<epoch> <start offset>\n..."
//!     partition.metadata                 "version: 0\ntopic_id: <id>"
//! ```
//! Byte-level details are in `docs/design/log-format.md`.
//!
//! # Invariants
//! * Offsets are strictly increasing through the log; each segment's base offset is at most
//!   the offset of its first batch and at least the previous segment's end offset.
//! * `log_start_offset ≤ log_end_offset` and `recovery_point ≤ log_end_offset`; everything below
//!   the recovery point has been fsynced.
//! * The high watermark is *not* the log's business: callers pass it as `max_offset` to
//!   [`Log::read`].
//! * Bytes of a segment file beyond its valid size (a torn write) are never served; recovery
//!   truncates them.
//! * After a crash (no clean-shutdown marker), every segment from the one holding the recovery
//!   point is scanned and CRC-checked; the log keeps every complete, valid batch before the
//!   first damaged one.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use fjord_common::{SystemClock, TopicPartition};
//! use fjord_protocol::compression::Compression;
//! use fjord_protocol::records::{decode_batch, BatchBuilder, Record};
//! use fjord_storage::{Log, LogConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("fjord-doc-{}", std::process::id()));
//! let tp = TopicPartition::new("orders", 0);
//! let mut log = Log::create(dir.join(tp.to_string()), tp, LogConfig::default(), Arc::new(SystemClock))?;
//!
//! let mut builder = BatchBuilder::new(Compression::None, 1_700_000_000_000);
//! builder.push(Record::new(Some(b"k".to_vec()), Some(b"hello".to_vec())));
//! builder.push(Record::new(Some(b"k".to_vec()), Some(b"world".to_vec())));
//! let mut batch = builder.build()?.to_vec();
//! let info = log.append_as_leader(&mut batch, 0)?;
//! assert_eq!((info.first_offset, info.last_offset), (0, 1));
//! assert_eq!(log.log_end_offset(), 2);
//!
//! // Read up to the high watermark (here: everything), then copy outside any lock.
//! let read = log.read(1, 1 << 20, log.log_end_offset(), true)?;
//! let bytes = read.slice.expect("one batch").read_bytes()?;
//! let records = decode_batch(&bytes)?.records;
//! assert_eq!(records[1].value.as_deref(), Some(&b"world"[..]));
//!
//! log.close()?;
//! std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod config;
pub mod epoch;
mod error;
mod index;
pub mod io;
mod log;
pub mod manager;
pub mod producer;
mod segment;
pub mod testing;

pub use config::{ConfigError, LogConfig, TimestampType, TOPIC_CONFIGS};
pub use epoch::EpochEntry;
pub use error::{Result, StorageError};
pub use io::{FileSlice, LogIo, StdIo};
pub use log::{
    AppendOrigin, Log, LogAppendInfo, LogOpenOptions, LogRead, SharedLog, TimestampAndOffset,
    PARTITION_METADATA,
};
pub use manager::LogManager;
pub use segment::{parse_offset_name, segment_file_name};
