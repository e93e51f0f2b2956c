//! Produce requests written as chunks: the framing (length, header, topic and partition
//! fields) in one small buffer, each sealed record batch as its own `Bytes` between its
//! pieces. The socket takes them with one vectored write, so a batch of a megabyte is never
//! copied into a request buffer on its way out.
//!
//! The layout is Kafka's ProduceRequest for versions 3–11 (flexible, with compact lengths and
//! tagged fields, from 9), behind request header v1 (v2 from 9). A test checks every version
//! byte for byte against kafka-protocol's generated encoder.

use bytes::{BufMut, Bytes, BytesMut};

/// The records of one partition.
pub(crate) struct PartitionRecords {
    pub(crate) partition: i32,
    pub(crate) records: Bytes,
}

/// The partitions of one topic, in request order.
pub(crate) struct TopicRecords<'a> {
    pub(crate) name: &'a str,
    pub(crate) partitions: Vec<PartitionRecords>,
}

/// The fixed fields of one request.
pub(crate) struct ProduceHeader<'a> {
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
    pub(crate) client_id: &'a str,
    pub(crate) acks: i16,
    pub(crate) timeout_ms: i32,
}

/// Kafka's ProduceRequest API key.
const PRODUCE_KEY: i16 = 0;

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_string(buf: &mut BytesMut, s: &str, flexible: bool) {
    if flexible {
        put_uvarint(buf, s.len() as u64 + 1);
    } else {
        buf.put_i16(s.len() as i16);
    }
    buf.put_slice(s.as_bytes());
}

fn put_array_len(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// The request as chunks, length prefix included; their concatenation is the frame.
pub(crate) fn encode(header: &ProduceHeader<'_>, topics: &[TopicRecords<'_>]) -> Vec<Bytes> {
    let flexible = header.version >= 9;
    let mut meta = BytesMut::with_capacity(64 + topics.len() * 32);
    // Where each batch goes: (offset in `meta` it follows, the batch).
    let mut splices: Vec<(usize, Bytes)> = Vec::new();
    meta.put_i32(0); // the size, patched below
    meta.put_i16(PRODUCE_KEY);
    meta.put_i16(header.version);
    meta.put_i32(header.correlation_id);
    put_string(&mut meta, header.client_id, false); // client_id is never compact
    if flexible {
        put_uvarint(&mut meta, 0); // header tagged fields
    }
    // transactional_id: null
    if flexible {
        put_uvarint(&mut meta, 0);
    } else {
        meta.put_i16(-1);
    }
    meta.put_i16(header.acks);
    meta.put_i32(header.timeout_ms);
    put_array_len(&mut meta, topics.len(), flexible);
    for topic in topics {
        put_string(&mut meta, topic.name, flexible);
        put_array_len(&mut meta, topic.partitions.len(), flexible);
        for p in &topic.partitions {
            meta.put_i32(p.partition);
            if flexible {
                put_uvarint(&mut meta, p.records.len() as u64 + 1);
            } else {
                meta.put_i32(p.records.len() as i32);
            }
            splices.push((meta.len(), p.records.clone()));
            if flexible {
                put_uvarint(&mut meta, 0); // partition tagged fields
            }
        }
        if flexible {
            put_uvarint(&mut meta, 0); // topic tagged fields
        }
    }
    if flexible {
        put_uvarint(&mut meta, 0); // request tagged fields
    }
    let size = meta.len() - 4 + splices.iter().map(|(_, b)| b.len()).sum::<usize>();
    meta[..4].copy_from_slice(&(size as i32).to_be_bytes());
    let meta = meta.freeze();
    let mut chunks = Vec::with_capacity(splices.len() * 2 + 1);
    let mut from = 0;
    for (at, batch) in splices {
        chunks.push(meta.slice(from..at));
        chunks.push(batch);
        from = at;
    }
    chunks.push(meta.slice(from..));
    chunks.retain(|c| !c.is_empty());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_protocol::frame::encode_request;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn every_version_matches_the_generated_encoder() {
        let batch = |n: u8| Bytes::from(vec![n; 100 + n as usize]);
        let topics = [
            ("orders", vec![(0, batch(1)), (3, batch(2))]),
            ("a", vec![(7, batch(3))]),
        ];
        for version in 3..=11i16 {
            let ours: Vec<u8> = encode(
                &ProduceHeader {
                    version,
                    correlation_id: 42,
                    client_id: "fjord-producer",
                    acks: -1,
                    timeout_ms: 30_000,
                },
                &topics
                    .iter()
                    .map(|(name, parts)| TopicRecords {
                        name,
                        partitions: parts
                            .iter()
                            .map(|(p, b)| PartitionRecords {
                                partition: *p,
                                records: b.clone(),
                            })
                            .collect(),
                    })
                    .collect::<Vec<_>>(),
            )
            .concat();
            let mut header = RequestHeader::default();
            header.request_api_key = PRODUCE_KEY;
            header.request_api_version = version;
            header.correlation_id = 42;
            header.client_id = Some(StrBytes::from_static_str("fjord-producer"));
            let mut req = ProduceRequest::default();
            req.acks = -1;
            req.timeout_ms = 30_000;
            for (name, parts) in &topics {
                let mut td = TopicProduceData::default();
                td.name = TopicName(StrBytes::from_string(name.to_string()));
                for (p, b) in parts {
                    let mut pd = PartitionProduceData::default();
                    pd.index = *p;
                    pd.records = Some(b.clone());
                    td.partition_data.push(pd);
                }
                req.topic_data.push(td);
            }
            let theirs = encode_request(&header, &req).expect("encodes");
            assert_eq!(ours, theirs.to_vec(), "produce v{version}");
        }
    }
}
