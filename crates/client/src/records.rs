//! Record batches v2 as the client writes and reads them.
//!
//! Writing: records are appended straight into an open batch buffer in their final wire form
//! (length-prefixed, varint fields); the 61-byte batch header is filled in when the batch is
//! sealed, after the idempotent producer has assigned its sequence number. Nothing is
//! allocated per record. Reading: batches of a fetch response are split with
//! [`fjord_protocol::batch::BatchIter`] and their records decoded into zero-copy slices of the
//! response buffer (or of the decompressed buffer).

use crate::error::{ClientError, Result};
use bytes::{BufMut, Bytes, BytesMut};
use fjord_common::ErrorCode;
use fjord_protocol::batch::{compute_crc, validate_batch, BatchHeader, HEADER_SIZE, MAGIC_V2};
use fjord_protocol::compression::Compression;

/// A record header: a string key and an optional value. Duplicate keys are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The key.
    pub key: String,
    /// The value, possibly null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

// Byte offsets of header fields (see `docs/design/log-format.md`).
const CRC_AT: usize = 17;
const PRODUCER_ID_AT: usize = 43;

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(value: i64) -> usize {
    let v = ((value << 1) ^ (value >> 63)) as u64;
    // 7 bits per byte; at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn nullable_len(len: Option<usize>) -> usize {
    match len {
        None => 1,
        Some(n) => varint_len(n as i64) + n,
    }
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => out.push(1), // zig-zag(-1)
        Some(f) => {
            put_varint(out, f.len() as i64);
            out.extend_from_slice(f);
        }
    }
}

fn body_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut n = 1
        + varint_len(timestamp_delta)
        + varint_len(offset_delta as i64)
        + nullable_len(key.map(<[u8]>::len))
        + nullable_len(value.map(<[u8]>::len))
        + varint_len(headers.len() as i64);
    for h in headers {
        n += nullable_len(Some(h.key.len())) + nullable_len(h.value.as_ref().map(Bytes::len));
    }
    n
}

/// A batch being filled: a reserved header followed by records in wire form.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Records section limit (`batch.size`, or one oversized record).
    limit: usize,
}

impl BatchWriter {
    /// A writer whose records may take `limit` bytes in total (always at least one record).
    pub(crate) fn new(limit: usize, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_SIZE + capacity);
        buf.resize(HEADER_SIZE, 0);
        BatchWriter {
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            limit,
        }
    }

    /// Bytes of records so far.
    pub(crate) fn records_size(&self) -> usize {
        self.buf.len() - HEADER_SIZE
    }

    /// Appends a record if it fits (the first record always fits). Returns its offset delta.
    pub(crate) fn try_append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Option<i32> {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let offset_delta = self.count;
        let body = body_size(ts_delta, offset_delta, key, value, headers);
        let total = varint_len(body as i64) + body;
        if self.count > 0 && self.records_size() + total > self.limit {
            return None;
        }
        let buf = &mut self.buf;
        buf.reserve(total);
        put_varint(buf, body as i64);
        buf.push(0); // record attributes
        put_varint(buf, ts_delta);
        put_varint(buf, offset_delta as i64);
        put_nullable(buf, key);
        put_nullable(buf, value);
        put_varint(buf, headers.len() as i64);
        for h in headers {
            put_nullable(buf, Some(h.key.as_bytes()));
            put_nullable(buf, h.value.as_deref());
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Some(offset_delta)
    }

    /// Finishes the batch: compresses the records and writes the header with the producer
    /// fields and the CRC.
    pub(crate) fn seal(
        mut self,
        compression: Compression,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Bytes> {
        let mut out = if compression == Compression::None {
            std::mem::take(&mut self.buf)
        } else {
            let packed = compression.compress(&self.buf[HEADER_SIZE..])?;
            let mut out = Vec::with_capacity(HEADER_SIZE + packed.len());
            out.resize(HEADER_SIZE, 0);
            out.extend_from_slice(&packed);
            out
        };
        let batch_length = (out.len() - 12) as i32;
        let header = &mut out[..HEADER_SIZE];
        let mut h: &mut [u8] = header;
        h.put_i64(0); // base offset, assigned by the broker
        h.put_i32(batch_length);
        h.put_i32(-1); // partition leader epoch
        h.put_i8(MAGIC_V2);
        h.put_u32(0); // crc, below
        h.put_i16(compression.id());
        h.put_i32((self.count - 1).max(0));
        h.put_i64(self.base_timestamp);
        h.put_i64(if self.count == 0 {
            self.base_timestamp
        } else {
            self.max_timestamp
        });
        h.put_i64(producer_id);
        h.put_i16(producer_epoch);
        h.put_i32(base_sequence);
        h.put_i32(self.count);
        let crc = compute_crc(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(out))
    }
}

/// Rewrites the producer id, epoch and base sequence of a sealed batch (after an epoch bump)
/// and recomputes its CRC.
pub(crate) fn restamp(
    batch: &Bytes,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    let mut h: &mut [u8] = &mut b[PRODUCER_ID_AT..PRODUCER_ID_AT + 14];
    h.put_i64(producer_id);
    h.put_i16(producer_epoch);
    h.put_i32(base_sequence);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// One record read from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadRecord {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut result: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        result |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((result >> 1) as i64) ^ -((result & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn get_nullable(data: &Bytes, pos: &mut usize, end: usize) -> Option<Option<Bytes>> {
    let len = get_varint(&data[..end], pos)?;
    if len < 0 {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    if *pos + len > end {
        return None;
    }
    let field = data.slice(*pos..*pos + len);
    *pos += len;
    Some(Some(field))
}

fn corrupt(what: &str) -> ClientError {
    ClientError::Kafka {
        code: ErrorCode::CorruptMessage,
        message: Some(format!("malformed record: {what}")),
        context: "fetched record batch".into(),
    }
}

/// Decodes the records of one complete batch (`batch` is exactly one batch). The CRC is
/// checked when `check_crc`. Records stay slices of `batch` unless it is compressed.
pub(crate) fn read_batch(
    batch: &Bytes,
    check_crc: bool,
    out: &mut Vec<ReadRecord>,
) -> Result<BatchHeader> {
    let header = if check_crc {
        validate_batch(batch)?
    } else {
        BatchHeader::parse(batch)?
    };
    let compression = header.compression()?;
    let data = if compression == Compression::None {
        batch.slice(HEADER_SIZE..)
    } else {
        Bytes::from(compression.decompress(&batch[HEADER_SIZE..])?)
    };
    let mut pos = 0usize;
    for _ in 0..header.record_count {
        let len = get_varint(&data, &mut pos).ok_or_else(|| corrupt("record length"))?;
        let len = usize::try_from(len).map_err(|_| corrupt("negative record length"))?;
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| corrupt("record longer than batch"))?;
        pos += 1; // attributes
        let ts_delta =
            get_varint(&data[..end], &mut pos).ok_or_else(|| corrupt("timestamp delta"))?;
        let offset_delta =
            get_varint(&data[..end], &mut pos).ok_or_else(|| corrupt("offset delta"))?;
        let key = get_nullable(&data, &mut pos, end).ok_or_else(|| corrupt("key"))?;
        let value = get_nullable(&data, &mut pos, end).ok_or_else(|| corrupt("value"))?;
        let count = get_varint(&data[..end], &mut pos).ok_or_else(|| corrupt("header count"))?;
        if count < 0 || count as usize > end - pos {
            return Err(corrupt("header count"));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let k = get_nullable(&data, &mut pos, end)
                .flatten()
                .ok_or_else(|| corrupt("header key"))?;
            let key =
                String::from_utf8(k.to_vec()).map_err(|_| corrupt("header key is not UTF-8"))?;
            let value =
                get_nullable(&data, &mut pos, end).ok_or_else(|| corrupt("header value"))?;
            headers.push(Header { key, value });
        }
        pos = end;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(ts_delta)
        };
        out.push(ReadRecord {
            offset: header.base_offset + offset_delta,
            timestamp,
            key,
            value,
            headers,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoded size of one record (length prefix included), for batch accounting.
    fn record_size(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = body_size(timestamp_delta, offset_delta, key, value, headers);
        varint_len(body as i64) + body
    }

    use fjord_protocol::records::decode_batch;

    #[test]
    fn varint_len_matches_encoding() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
        }
    }

    #[test]
    fn written_batches_decode_with_the_protocol_crate() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut w = BatchWriter::new(16384, 1024);
            let headers = vec![
                Header::new("h", "v"),
                Header {
                    key: "n".into(),
                    value: None,
                },
            ];
            assert_eq!(
                w.try_append(1000, Some(b"k1"), Some(b"v1"), &headers),
                Some(0)
            );
            assert_eq!(w.try_append(990, None, Some(b"v2"), &[]), Some(1));
            assert_eq!(w.try_append(1005, Some(b"k3"), None, &[]), Some(2));
            let sealed = w.seal(codec, 42, 3, 17).unwrap();
            let decoded = decode_batch(&sealed).unwrap();
            assert_eq!(decoded.header.producer_id, 42);
            assert_eq!(decoded.header.producer_epoch, 3);
            assert_eq!(decoded.header.base_sequence, 17);
            assert_eq!(decoded.header.record_count, 3);
            assert_eq!(decoded.header.max_timestamp, 1005);
            assert_eq!(decoded.records[1].timestamp, 990);
            assert_eq!(decoded.records[0].headers.len(), 2);
            assert_eq!(decoded.records[2].value, None);
            let mut ours = Vec::new();
            let h = read_batch(&sealed, true, &mut ours).unwrap();
            assert_eq!(h.record_count, 3);
            assert_eq!(ours[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(ours[0].headers, headers);
            assert_eq!(ours[1].key, None);
            assert_eq!(ours[2].offset, 2);
            let restamped = restamp(&sealed, 43, 0, 0);
            let d = decode_batch(&restamped).unwrap();
            assert_eq!(
                (
                    d.header.producer_id,
                    d.header.producer_epoch,
                    d.header.base_sequence
                ),
                (43, 0, 0)
            );
        }
    }

    #[test]
    fn batch_limit_is_respected_but_one_record_always_fits() {
        let mut w = BatchWriter::new(100, 100);
        assert!(w.try_append(0, None, Some(&[0u8; 500]), &[]).is_some());
        assert!(w.try_append(0, None, Some(b"x"), &[]).is_none());
        let mut w = BatchWriter::new(100, 100);
        let mut n = 0;
        while w.try_append(0, None, Some(&[1u8; 10]), &[]).is_some() {
            n += 1;
        }
        assert!(w.records_size() <= 100);
        assert!(w.records_size() + record_size(0, n, None, Some(&[1u8; 10]), &[]) > 100);
        assert_eq!(record_size(0, 0, None, Some(&[1u8; 10]), &[]), 17);
    }
}
