//! Hand-written FetchResponse encoder (v4–v12).
//!
//! The generated encoder copies every `Bytes` field; here the record data read from a
//! segment travels as its own chunk and is never copied into the header buffer.

use crate::server::ResponseChunks;
use bytes::{BufMut, Bytes};
use fjord_protocol::chunked::ChunkWriter;

/// One partition of a fetch response.
pub(crate) struct FetchedPartition {
    pub(crate) partition: i32,
    pub(crate) error_code: i16,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    /// `true` for read_committed: aborted transactions are an empty list rather than null.
    pub(crate) read_committed: bool,
    pub(crate) records: Option<Bytes>,
}

/// One topic of a fetch response.
pub(crate) struct FetchedTopic {
    pub(crate) name: Bytes,
    pub(crate) partitions: Vec<FetchedPartition>,
}

/// Encodes a complete response frame (length prefix included) as chunks.
pub(crate) fn encode(
    version: i16,
    correlation_id: i32,
    error_code: i16,
    session_id: i32,
    topics: &[FetchedTopic],
) -> ResponseChunks {
    let flexible = version >= 12;
    let mut w = ChunkWriter::new(flexible);
    // Response header: correlation id (+ tagged fields in header v1).
    w.fixed().put_i32(correlation_id);
    w.tagged_fields();
    w.fixed().put_i32(0); // throttle_time_ms (v1+)
    if version >= 7 {
        w.fixed().put_i16(error_code);
        w.fixed().put_i32(session_id);
    }
    w.array_len(topics.len());
    for topic in topics {
        w.string(&topic.name);
        w.array_len(topic.partitions.len());
        for p in &topic.partitions {
            w.fixed().put_i32(p.partition);
            w.fixed().put_i16(p.error_code);
            w.fixed().put_i64(p.high_watermark);
            w.fixed().put_i64(p.last_stable_offset);
            if version >= 5 {
                w.fixed().put_i64(p.log_start_offset);
            }
            if p.read_committed {
                w.array_len(0);
            } else if flexible {
                w.uvarint(0);
            } else {
                w.fixed().put_i32(-1);
            }
            if version >= 11 {
                w.fixed().put_i32(-1); // preferred_read_replica
            }
            w.records(p.records.as_ref());
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, BytesMut};
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    /// Our encoding must decode with the generated decoder, for every version we serve.
    #[test]
    fn matches_the_generated_decoder() {
        for version in 4..=12i16 {
            for read_committed in [false, true] {
                let topics = vec![FetchedTopic {
                    name: Bytes::from_static(b"orders"),
                    partitions: vec![
                        FetchedPartition {
                            partition: 0,
                            error_code: 0,
                            high_watermark: 10,
                            last_stable_offset: 10,
                            log_start_offset: 2,
                            read_committed,
                            records: Some(Bytes::from_static(b"0123456789")),
                        },
                        FetchedPartition {
                            partition: 1,
                            error_code: 1,
                            high_watermark: 5,
                            last_stable_offset: 5,
                            log_start_offset: 0,
                            read_committed,
                            records: Some(Bytes::new()),
                        },
                    ],
                }];
                let chunks = encode(version, 77, 0, 0, &topics);
                let mut all = BytesMut::new();
                for c in &chunks {
                    all.extend_from_slice(c);
                }
                let mut buf = all.freeze();
                let len = buf.get_i32() as usize;
                assert_eq!(len, buf.len());
                let header_version = if version >= 12 { 1 } else { 0 };
                let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
                assert_eq!(header.correlation_id, 77);
                let decoded = FetchResponse::decode(&mut buf, version).unwrap();
                assert!(buf.is_empty(), "v{version}: trailing bytes");
                let p0 = &decoded.responses[0].partitions[0];
                assert_eq!(decoded.responses[0].topic.as_str(), "orders");
                assert_eq!(p0.high_watermark, 10);
                assert_eq!(p0.records.as_deref(), Some(&b"0123456789"[..]));
                assert_eq!(p0.aborted_transactions.is_some(), read_committed);
                if version >= 5 {
                    assert_eq!(p0.log_start_offset, 2);
                }
                assert_eq!(decoded.responses[0].partitions[1].error_code, 1);
            }
        }
    }
}
