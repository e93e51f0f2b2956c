//! RecordBatch v2 (magic 2) headers: parse, validate, patch. Byte layout in
//! `docs/design/log-format.md`.
//!
//! The produce path of the broker validates and patches batches in place and stores the
//! bytes exactly as they came; nothing here allocates.

use crate::compression::Compression;
use thiserror::Error;

/// Size of the fixed batch header, up to and including the record count.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the `batchLength` field ends: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// The only record format Fjord speaks.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a batch was rejected. Maps to `CORRUPT_MESSAGE` / `INVALID_RECORD` at the broker edge.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// Fewer bytes than a batch header.
    #[error("record batch truncated: {available} bytes, need {needed}")]
    Truncated {
        /// Bytes present.
        available: usize,
        /// Bytes the header says are needed.
        needed: usize,
    },
    /// `batchLength` is too small to hold a header.
    #[error("record batch length {0} is invalid")]
    InvalidLength(i32),
    /// Not magic 2.
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    UnsupportedMagic(i8),
    /// CRC32C mismatch.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Negative or inconsistent record count or offset delta.
    #[error("record batch header is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// Unknown compression codec id.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(i16),
}

/// The fixed header fields of a v2 batch, copied out of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: i32,
    /// Leader epoch stamped by the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Record format version.
    pub magic: i8,
    /// CRC32C of everything from the attributes to the end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (or the LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, `-1` if none.
    pub producer_id: i64,
    /// Producer epoch, `-1` if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, `-1` if none.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (no CRC check).
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BatchError::Truncated {
                available: bytes.len(),
                needed: HEADER_SIZE,
            });
        }
        let header = BatchHeader {
            base_offset: i64_at(bytes, BASE_OFFSET),
            batch_length: i32_at(bytes, BATCH_LENGTH),
            partition_leader_epoch: i32_at(bytes, PARTITION_LEADER_EPOCH),
            magic: bytes[MAGIC] as i8,
            crc: i32_at(bytes, CRC) as u32,
            attributes: i16_at(bytes, ATTRIBUTES),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(bytes, BASE_TIMESTAMP),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP),
            producer_id: i64_at(bytes, PRODUCER_ID),
            producer_epoch: i16_at(bytes, PRODUCER_EPOCH),
            base_sequence: i32_at(bytes, BASE_SEQUENCE),
            record_count: i32_at(bytes, RECORD_COUNT),
        };
        if header.magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(header.magic));
        }
        if (header.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength(header.batch_length));
        }
        Ok(header)
    }

    /// Total size of the batch in bytes, header included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        // Wire values: never overflow-panic on a hostile base offset.
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// Offset the next batch starts at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The compression codec of the records section.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_id(self.attributes & COMPRESSION_MASK).ok_or(
            BatchError::UnknownCompression(self.attributes & COMPRESSION_MASK),
        )
    }

    /// True when timestamps are LogAppendTime (set by the broker) rather than CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// True for batches written inside a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// True when the batch carries producer id, epoch and sequence (idempotent producer).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Computes the CRC32C a batch should carry.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// Validates one complete batch: magic, length, header consistency and CRC32C.
/// `batch` must be exactly one batch (as sliced by [`BatchIter`]).
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.size() != batch.len() {
        return Err(BatchError::Truncated {
            available: batch.len(),
            needed: header.size(),
        });
    }
    if header.record_count < 0 {
        return Err(BatchError::Inconsistent("negative record count"));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::Inconsistent("negative last offset delta"));
    }
    // Control batches and compacted batches may have fewer records than the offset span,
    // never more.
    if header.record_count as i64 > header.last_offset_delta as i64 + 1 {
        return Err(BatchError::Inconsistent(
            "more records than the offset delta allows",
        ));
    }
    header.compression()?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Writes the base offset (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch (not covered by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `timestamp` as its max timestamp and recomputes
/// the CRC, as Kafka's broker does for `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) {
    let attributes = i16_at(batch, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// [`set_log_append_time`] for a batch held in two pieces: its first [`HEADER_SIZE`] bytes
/// (`head`, patched) and the records after them (`records`, read only).
pub fn set_log_append_time_split(head: &mut [u8], records: &[u8], timestamp: i64) {
    let attributes = i16_at(head, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    head[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    head[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[ATTRIBUTES..HEADER_SIZE]), records);
    head[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates over the batches of a record set, yielding each batch's header and byte range.
///
/// Stops with an error at the first batch that does not parse or is cut short; the caller
/// decides whether a short tail is corruption (produce) or a partial read (fetch).
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> BatchIter<'a> {
    /// Iterates the batches in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Byte position of the next batch.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, std::ops::Range<usize>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.bytes[self.position..];
        if rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                self.position = self.bytes.len();
                return Some(Err(e));
            }
        };
        let size = header.size();
        if size > rest.len() {
            self.position = self.bytes.len();
            return Some(Err(BatchError::Truncated {
                available: rest.len(),
                needed: size,
            }));
        }
        let range = self.position..self.position + size;
        self.position += size;
        Some(Ok((header, range)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{BatchBuilder, Record};

    fn sample(n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None, 1000);
        for i in 0..n {
            b.push(Record::new(
                Some(format!("k{i}").into_bytes()),
                Some(vec![b'v'; 10]),
            ));
        }
        b.build().unwrap().to_vec()
    }

    #[test]
    fn validates_and_patches() {
        let mut batch = sample(3);
        let h = validate_batch(&batch).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        set_base_offset(&mut batch, 42);
        set_partition_leader_epoch(&mut batch, 7);
        let h = validate_batch(&batch).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.partition_leader_epoch, 7);
        set_log_append_time(&mut batch, 99);
        let h = validate_batch(&batch).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
    }

    #[test]
    fn log_append_time_on_a_split_batch_matches_the_whole_one() {
        let mut whole = sample(5);
        let mut head = [0u8; HEADER_SIZE];
        head.copy_from_slice(&whole[..HEADER_SIZE]);
        set_log_append_time_split(&mut head, &whole[HEADER_SIZE..], 1234);
        set_log_append_time(&mut whole, 1234);
        assert_eq!(&head[..], &whole[..HEADER_SIZE]);
        let mut joined = head.to_vec();
        joined.extend_from_slice(&whole[HEADER_SIZE..]);
        assert!(validate_batch(&joined).unwrap().is_log_append_time());
    }

    #[test]
    fn rejects_corruption() {
        let mut batch = sample(2);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate_batch(&batch),
            Err(BatchError::CrcMismatch { .. })
        ));
        let batch = sample(2);
        assert!(matches!(
            validate_batch(&batch[..batch.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        let mut batch = sample(1);
        batch[MAGIC] = 1;
        assert_eq!(validate_batch(&batch), Err(BatchError::UnsupportedMagic(1)));
    }

    #[test]
    fn iterates_concatenated_batches() {
        let mut set = sample(2);
        set.extend(sample(5));
        let counts: Vec<i32> = BatchIter::new(&set)
            .map(|r| r.unwrap().0.record_count)
            .collect();
        assert_eq!(counts, vec![2, 5]);
        let cut = &set[..set.len() - 3];
        let results: Vec<_> = BatchIter::new(cut).collect();
        assert!(results[0].is_ok());
        assert!(results[1].is_err());
    }

    #[test]
    fn sequence_wraps() {
        let mut batch = sample(3);
        batch[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.last_sequence(), 0);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for (_, range) in BatchIter::new(&bytes).flatten() {
                let _ = validate_batch(&bytes[range]);
            }
        }
    }
}
