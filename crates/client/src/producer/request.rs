//! Produce requests written as chunks (`fjord_protocol::chunked`): the framing in small
//! buffers, each sealed record batch as its own `Bytes` between them. The socket takes them
//! with one vectored write, so a batch of a megabyte is never copied into a request buffer on
//! its way out.
//!
//! The layout is Kafka's ProduceRequest for versions 3–11 (flexible, with compact lengths and
//! tagged fields, from 9), behind request header v1 (v2 from 9). A test checks every version
//! byte for byte against kafka-protocol's generated encoder.

use bytes::{BufMut, Bytes};
use fjord_protocol::chunked::ChunkWriter;

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

/// The request as chunks, length prefix included; their concatenation is the frame.
pub(crate) fn encode(header: &ProduceHeader<'_>, topics: &[TopicRecords<'_>]) -> Vec<Bytes> {
    let mut w = ChunkWriter::new(header.version >= 9);
    // Request header v1, v2 from flexible versions (whose client_id is still not compact).
    w.fixed().put_i16(PRODUCE_KEY);
    w.fixed().put_i16(header.version);
    w.fixed().put_i32(header.correlation_id);
    w.fixed().put_i16(header.client_id.len() as i16);
    w.fixed().put_slice(header.client_id.as_bytes());
    w.tagged_fields();
    w.null_string(); // transactional_id
    w.fixed().put_i16(header.acks);
    w.fixed().put_i32(header.timeout_ms);
    w.array_len(topics.len());
    for topic in topics {
        w.string(topic.name.as_bytes());
        w.array_len(topic.partitions.len());
        for p in &topic.partitions {
            w.fixed().put_i32(p.partition);
            w.records(Some(&p.records));
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
