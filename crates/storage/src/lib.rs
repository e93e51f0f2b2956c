//! Fjord's storage engine: one segmented, append-only log per partition, laid out on disk
//! exactly like Kafka's so that operators recognise it, plus the [`LogManager`] that owns all
//! logs of a broker.
//!
//! Everything here is synchronous (no async runtime): the broker wraps each [`Log`] in a
//! [`SharedLog`] (`Arc<parking_lot::RwLock<Log>>`). Reads take `&self` and only look up
//! indexes; they return a [`FileSlice`] that the caller copies (or sends) *outside* the lock.
//! Appends take `&mut self` and do no per-record work: validate the CRC, patch the header,
//! one positioned write, maybe an index entry. The one exception is a log whose
//! `cleanup.policy` includes `compact`: its leader appends decode the batch once to refuse
//! records without a key (`InvalidRecord`, Kafka's wording), because compaction needs keys.
//!
//! # Compaction
//! Logs with `cleanup.policy=compact` (or `compact,delete`) are cleaned as Kafka's log cleaner
//! does ([`cleaner`] has the details): for every key only the record with the highest offset
//! survives, tombstones (null values) go once their timestamp is older than
//! `delete.retention.ms`, records keep their offsets and batches their offset spans, producer
//! fields and leader epochs. [`Log::compact`] runs one pass on a log;
//! [`LogManager::run_cleaner`] picks the logs whose dirty ratio reaches
//! `min.cleanable.dirty.ratio` (or that waited beyond `max.compaction.lag.ms`, or hold an
//! expired tombstone) and cleans them through [`compact_shared`], which holds the log's lock
//! only to plan and to swap. Cleaned segments are written beside the originals as
//! `.cleaned` files and swapped in by renames, so that a crash at any point leaves the log as
//! it was before or after the pass.
//!
//! # Layout
//! ```text
//! <log.dir>/
//!   recovery-point-offset-checkpoint     "0\n<n>\n<topic> <partition> <offset>\n..."
//!   log-start-offset-checkpoint          same format
//!   cleaner-offset-checkpoint            same format: first dirty offset of compacted logs
//!   .kafka_cleanshutdown                 present only between a clean shutdown and the next start
//!   <topic>-<partition>/
//!     00000000000000000000.log           record batches, exactly their wire bytes
//!     00000000000000000000.index         (relative offset u32, position u32) every ~index.interval.bytes
//!     00000000000000000000.timeindex     (max timestamp i64, relative offset u32)
//!     00000000000000001234.snapshot      idempotent-producer state below offset 1234
//!     leader-epoch-checkpoint            "0\n<n>\n<epoch> <start offset>\n..."
//!     partition.metadata                 "version: 0\ntopic_id: <id>"
//!     00000000000000000000.log.cleaned   (+ .index/.timeindex) a cleaner pass being written
//!     00000000000000000000.log.swap      (+ .index/.timeindex) a cleaner pass past its commit
//!                                        point, completed at the next open
//! ```
//! Byte-level details are in `docs/design/log-format.md`.
//!
//! # Invariants
//! * Offsets are strictly increasing through the log; each segment's base offset is at most
//!   the offset of its first batch and at least the previous segment's end offset. After
//!   compaction offsets have gaps, batches may hold fewer records than their offset span (or
//!   none), and a read at any offset returns the first batch ending at or after it.
//! * The cleaner never touches the active segment nor segments reaching
//!   [`Log::max_cleanable_offset`]; a cleaned segment ends at exactly the offset where the
//!   segments it replaced ended.
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
//! let batch = builder.build()?;
//! let info = log.append_as_leader(&batch, 0)?;
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
pub mod cleaner;
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

pub use cleaner::{compact_shared, CleanableInfo, CleanerConfig, CompactionStats};
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
