//! Produce: validate each partition's single batch, append it, acknowledge.
//!
//! Records are never decoded here: the storage layer checks the batch header and CRC, patches
//! the base offset and leader epoch (and LogAppendTime) in a copy of the 61-byte batch header
//! and appends that header and the records straight from the request buffer.

use super::{sb, HandlerResult, RequestContext};
use crate::errors::storage_error_code;
use bytes::Bytes;
use fjord_common::ErrorCode;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

pub(crate) async fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: ProduceRequest = ctx.decode()?;
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        for data in topic.partition_data {
            let mut pr = PartitionProduceResponse::default();
            pr.error_message = None;
            pr.index = data.index;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            let result = if !matches!(acks, -1..=1) {
                Err((
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks={acks} is not one of -1, 0, 1"),
                ))
            } else if request.transactional_id.is_some() {
                Err((
                    ErrorCode::TransactionalIdAuthorizationFailed,
                    "transactions are not supported by this broker yet".to_string(),
                ))
            } else {
                append(ctx, &topic.name, data.index, data.records, acks)
            };
            match result {
                Ok((base_offset, log_append_time, log_start)) => {
                    pr.base_offset = base_offset;
                    pr.log_append_time_ms = log_append_time;
                    if ctx.version() >= 5 {
                        pr.log_start_offset = log_start;
                    }
                }
                Err((code, message)) => {
                    tracing::debug!(peer = %ctx.peer, topic = %topic.name.as_str(), partition = data.index, %code, "produce rejected: {message}");
                    pr.error_code = code.code();
                    if ctx.version() >= 8 {
                        pr.error_message = Some(sb(message));
                    }
                }
            }
            topic_response.partition_responses.push(pr);
        }
        response.responses.push(topic_response);
    }
    if acks == 0 {
        return Ok(None);
    }
    ctx.respond(&response)
}

type AppendResult = Result<(i64, i64, i64), (ErrorCode, String)>;

fn append(
    ctx: &RequestContext<'_>,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    acks: i16,
) -> AppendResult {
    let Some(p) = ctx.broker.partitions.get(topic, partition) else {
        return Err((
            ErrorCode::UnknownTopicOrPartition,
            format!("This server does not host {topic}-{partition}"),
        ));
    };
    let records = match records {
        Some(r) if !r.is_empty() => r,
        _ => {
            return Err((
                ErrorCode::InvalidRecord,
                "produce request carries no record batch".into(),
            ))
        }
    };
    let epoch = p.leader_epoch();
    let (info, log_start) = {
        let mut log = p.log.write();
        if acks == -1 {
            let min_isr = log.config().min_insync_replicas;
            let isr = 1;
            if min_isr > isr {
                return Err((
                    ErrorCode::NotEnoughReplicas,
                    format!("min.insync.replicas={min_isr} but the ISR has {isr} replica(s)"),
                ));
            }
        }
        let info = log
            .append_as_leader(&records, epoch)
            .map_err(|e| (storage_error_code(&e), e.to_string()))?;
        (info, log.log_start_offset())
    };
    // Single replica: the high watermark is the log end offset.
    p.advance_high_watermark(info.last_offset + 1);
    Ok((info.first_offset, info.log_append_time, log_start))
}
