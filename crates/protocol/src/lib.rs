//! Kafka's wire format as Fjord needs it, on top of the generated messages of the
//! [`kafka_protocol`] crate.
//!
//! * [`frame`]: length-prefixed frames, request headers and response encoding.
//! * [`batch`]: a zero-copy view of RecordBatch v2 headers, validation (magic, lengths, CRC32C)
//!   and in-place patching of base offset, leader epoch and LogAppendTime. This is the only
//!   thing the broker's produce path touches: records are never decoded one by one there.
//! * [`records`]: whole-record decoding and a batch builder, for clients, compaction and
//!   timestamp look-ups.
//! * [`compression`]: none, gzip, snappy (raw and xerial-framed), lz4 (frame) and zstd.
//!
//! ```
//! use fjord_protocol::batch::{BatchHeader, validate_batch};
//! use fjord_protocol::records::{BatchBuilder, Record};
//! use fjord_protocol::compression::Compression;
//!
//! let mut builder = BatchBuilder::new(Compression::Gzip, 1_700_000_000_000);
//! builder.push(Record::new(Some(b"key".to_vec()), Some(b"value".to_vec())));
//! let batch = builder.build().unwrap();
//! validate_batch(&batch).unwrap();
//! let header = BatchHeader::parse(&batch).unwrap();
//! assert_eq!(header.record_count, 1);
//! assert_eq!(header.compression(), Ok(Compression::Gzip));
//! ```

pub mod batch;
pub mod chunked;
pub mod compression;
pub mod frame;
pub mod records;
mod varint;

pub use kafka_protocol;
