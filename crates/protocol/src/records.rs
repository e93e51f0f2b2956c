//! Whole records inside v2 batches: decoding (with decompression) and a batch builder.
//!
//! The broker's produce and fetch paths never come here. Clients, compaction and
//! timestamp look-ups do.

use crate::batch::{compute_crc, validate_batch, BatchError, BatchHeader, HEADER_SIZE, MAGIC_V2};
use crate::compression::{Compression, CompressionError};
use crate::varint::{get_varint, get_varlong, put_varint, put_varlong, varlong_len};
use bytes::Bytes;
use thiserror::Error;

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value, possibly null.
    pub value: Option<Bytes>,
}

/// One record with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Absolute offset (filled in by decoding; ignored by the builder).
    pub offset: i64,
    /// Absolute timestamp in ms; `-1` in the builder means "the builder's default".
    pub timestamp: i64,
    /// Key, possibly null.
    pub key: Option<Bytes>,
    /// Value; null is a tombstone on compacted topics.
    pub value: Option<Bytes>,
    /// Headers in order; duplicate keys are kept.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with a key and value and the builder's default timestamp.
    pub fn new(key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Self {
        Record {
            offset: 0,
            timestamp: -1,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers: Vec::new(),
        }
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Vec<u8>>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: value.map(Bytes::from),
        });
        self
    }
}

/// Why records could not be decoded.
#[derive(Debug, Error)]
pub enum RecordsError {
    /// The batch header is bad.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Decompression failed.
    #[error(transparent)]
    Compression(#[from] CompressionError),
    /// A record inside the batch is malformed.
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// A decoded batch: its header and its records.
#[derive(Debug, Clone)]
pub struct DecodedBatch {
    /// The batch header.
    pub header: BatchHeader,
    /// The records, in offset order.
    pub records: Vec<Record>,
}

/// Decodes every record of one complete batch (validating its CRC first).
pub fn decode_batch(batch: &[u8]) -> Result<DecodedBatch, RecordsError> {
    let header = validate_batch(batch)?;
    let compression = header.compression()?;
    let body = &batch[HEADER_SIZE..];
    let owned;
    let mut buf: &[u8] = if compression == Compression::None {
        body
    } else {
        owned = compression.decompress(body)?;
        &owned
    };
    // The count comes from the wire: every record takes at least one byte, so the bytes at
    // hand bound the pre-allocation (found by the batch_validator fuzz target).
    let mut records = Vec::with_capacity((header.record_count.max(0) as usize).min(buf.len()));
    for _ in 0..header.record_count {
        let len = get_varint(&mut buf).ok_or(RecordsError::Malformed("record length"))?;
        let len = usize::try_from(len).map_err(|_| RecordsError::Malformed("negative length"))?;
        if len > buf.len() {
            return Err(RecordsError::Malformed("record longer than batch"));
        }
        let (mut rec, rest) = buf.split_at(len);
        buf = rest;
        let (_attributes, r) = rec
            .split_first()
            .ok_or(RecordsError::Malformed("record attributes"))?;
        rec = r;
        let ts_delta = get_varlong(&mut rec).ok_or(RecordsError::Malformed("timestamp delta"))?;
        let offset_delta = get_varint(&mut rec).ok_or(RecordsError::Malformed("offset delta"))?;
        let key = read_nullable(&mut rec)?;
        let value = read_nullable(&mut rec)?;
        let header_count = get_varint(&mut rec).ok_or(RecordsError::Malformed("header count"))?;
        if header_count < 0 || header_count as usize > rec.len() {
            return Err(RecordsError::Malformed("header count"));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let k = read_nullable(&mut rec)?.ok_or(RecordsError::Malformed("null header key"))?;
            let key = String::from_utf8(k).map_err(|_| RecordsError::Malformed("header key"))?;
            let value = read_nullable(&mut rec)?.map(Bytes::from);
            headers.push(Header { key, value });
        }
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(ts_delta)
        };
        records.push(Record {
            offset: header.base_offset.wrapping_add(offset_delta as i64),
            timestamp,
            key: key.map(Bytes::from),
            value: value.map(Bytes::from),
            headers,
        });
    }
    Ok(DecodedBatch { header, records })
}

fn read_nullable(buf: &mut &[u8]) -> Result<Option<Vec<u8>>, RecordsError> {
    let len = get_varint(buf).ok_or(RecordsError::Malformed("field length"))?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if len > buf.len() {
        return Err(RecordsError::Malformed("field longer than record"));
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Ok(Some(field.to_vec()))
}

/// Builds one v2 batch from records.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    default_timestamp: i64,
    log_append_time: bool,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    records: Vec<Record>,
    /// Offset deltas, when the caller keeps original offsets (compaction).
    offset_deltas: Option<Vec<i32>>,
    last_offset_delta: Option<i32>,
}

impl BatchBuilder {
    /// A builder; records without a timestamp get `default_timestamp`.
    pub fn new(compression: Compression, default_timestamp: i64) -> Self {
        BatchBuilder {
            compression,
            default_timestamp,
            log_append_time: false,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            records: Vec::new(),
            offset_deltas: None,
            last_offset_delta: None,
        }
    }

    /// Sets idempotent producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets the base offset written into the batch.
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Marks the batch transactional.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks timestamps as LogAppendTime (the max timestamp applies to every record).
    pub fn log_append_time(mut self, yes: bool) -> Self {
        self.log_append_time = yes;
        self
    }

    /// Keeps each pushed record's absolute `offset` (relative to the base offset) instead of
    /// numbering records 0, 1, 2, …; `last_offset` fixes the batch's offset span, so that a
    /// compacted batch still covers the offsets of the original one.
    pub fn keep_offsets(mut self, last_offset: i64) -> Self {
        self.offset_deltas = Some(Vec::new());
        self.last_offset_delta = Some((last_offset - self.base_offset) as i32);
        self
    }

    /// Adds a record.
    pub fn push(&mut self, record: Record) {
        if let Some(deltas) = &mut self.offset_deltas {
            deltas.push((record.offset - self.base_offset) as i32);
        }
        self.records.push(record);
    }

    /// Number of records so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Rough encoded size before compression, for batch-size limits.
    pub fn estimated_size(&self) -> usize {
        HEADER_SIZE
            + self
                .records
                .iter()
                .map(|r| {
                    12 + r.key.as_ref().map_or(0, |k| k.len())
                        + r.value.as_ref().map_or(0, |v| v.len())
                        + r.headers
                            .iter()
                            .map(|h| 4 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// Encodes the batch with a valid CRC.
    pub fn build(&self) -> Result<Bytes, CompressionError> {
        let timestamp_of = |r: &Record| {
            if r.timestamp >= 0 {
                r.timestamp
            } else {
                self.default_timestamp
            }
        };
        let base_timestamp = self
            .records
            .first()
            .map(timestamp_of)
            .unwrap_or(self.default_timestamp);
        let max_timestamp = self
            .records
            .iter()
            .map(timestamp_of)
            .max()
            .unwrap_or(self.default_timestamp);
        let mut body = Vec::with_capacity(self.estimated_size());
        let mut scratch = Vec::with_capacity(64);
        for (i, r) in self.records.iter().enumerate() {
            let offset_delta = match &self.offset_deltas {
                Some(d) => d[i],
                None => i as i32,
            };
            scratch.clear();
            scratch.push(0u8);
            put_varlong(&mut scratch, timestamp_of(r) - base_timestamp);
            put_varint(&mut scratch, offset_delta);
            put_nullable(&mut scratch, r.key.as_deref());
            put_nullable(&mut scratch, r.value.as_deref());
            put_varint(&mut scratch, r.headers.len() as i32);
            for h in &r.headers {
                put_nullable(&mut scratch, Some(h.key.as_bytes()));
                put_nullable(&mut scratch, h.value.as_deref());
            }
            body.reserve(varlong_len(scratch.len() as i64) + scratch.len());
            put_varint(&mut body, scratch.len() as i32);
            body.extend_from_slice(&scratch);
        }
        let body = if self.compression == Compression::None {
            body
        } else {
            self.compression.compress(&body)?
        };
        let last_offset_delta = self
            .last_offset_delta
            .unwrap_or((self.records.len() as i32 - 1).max(0));
        let mut attributes = self.compression.id();
        if self.log_append_time {
            attributes |= 0x08;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&((HEADER_SIZE - 12 + body.len()) as i32).to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&last_offset_delta.to_be_bytes());
        out.extend_from_slice(&base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as i32).to_be_bytes());
        out.extend_from_slice(&body);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(out))
    }
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(f) => {
            put_varint(out, f.len() as i32);
            out.extend_from_slice(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            0i64..1_000_000,
            proptest::collection::vec(
                (
                    "[a-z]{0,5}",
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5)),
                ),
                0..3,
            ),
        )
            .prop_map(|(k, v, ts, hs)| {
                let mut r = Record::new(k, v).with_timestamp(1_600_000_000_000 + ts);
                for (hk, hv) in hs {
                    r = r.with_header(hk, hv);
                }
                r
            })
    }

    proptest! {
        #[test]
        fn build_then_decode_round_trips(
            records in proptest::collection::vec(arb_record(), 1..30),
            codec in 0i16..5,
            base in 0i64..1_000_000,
        ) {
            let codec = Compression::from_id(codec).unwrap();
            let mut b = BatchBuilder::new(codec, 0).base_offset(base).producer(7, 1, 100);
            for r in &records {
                b.push(r.clone());
            }
            let bytes = b.build().unwrap();
            let decoded = decode_batch(&bytes).unwrap();
            prop_assert_eq!(decoded.header.producer_id, 7);
            prop_assert_eq!(decoded.header.last_sequence(), 100 + records.len() as i32 - 1);
            prop_assert_eq!(decoded.records.len(), records.len());
            for (i, (got, want)) in decoded.records.iter().zip(&records).enumerate() {
                prop_assert_eq!(got.offset, base + i as i64);
                prop_assert_eq!(got.timestamp, want.timestamp);
                prop_assert_eq!(&got.key, &want.key);
                prop_assert_eq!(&got.value, &want.value);
                prop_assert_eq!(&got.headers, &want.headers);
            }
        }
    }

    #[test]
    fn a_huge_record_count_is_an_error_not_an_allocation() {
        let mut b = BatchBuilder::new(Compression::None, 5);
        b.push(Record::new(Some(b"k".to_vec()), Some(b"v".to_vec())));
        let mut bytes = b.build().unwrap().to_vec();
        // Claim 2^31-1 records spanning as many offsets, with a valid CRC.
        bytes[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crate::batch::compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_batch(&bytes),
            Err(RecordsError::Malformed(_))
        ));
    }

    #[test]
    fn kept_offsets_survive() {
        let mut b = BatchBuilder::new(Compression::None, 5)
            .base_offset(10)
            .keep_offsets(19);
        let mut r = Record::new(Some(b"a".to_vec()), None);
        r.offset = 13;
        b.push(r);
        let bytes = b.build().unwrap();
        let d = decode_batch(&bytes).unwrap();
        assert_eq!(d.header.last_offset(), 19);
        assert_eq!(d.records[0].offset, 13);
        assert_eq!(d.records[0].value, None);
    }
}
