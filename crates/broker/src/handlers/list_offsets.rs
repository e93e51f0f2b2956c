//! ListOffsets (earliest, latest, max timestamp, by timestamp) and OffsetForLeaderEpoch.

use super::{HandlerResult, RequestContext};
use crate::errors::storage_error_code;
use fjord_common::ErrorCode;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub(crate) fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: ListOffsetsRequest = ctx.decode()?;
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic.name.clone();
        for p in topic.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            match lookup(
                ctx,
                topic.name.as_str(),
                p.partition_index,
                p.current_leader_epoch,
                p.timestamp,
            ) {
                Ok((timestamp, offset, epoch)) => {
                    pr.timestamp = timestamp;
                    pr.offset = offset;
                    if ctx.version() >= 4 {
                        pr.leader_epoch = epoch;
                    }
                }
                Err(code) => pr.error_code = code.code(),
            }
            tr.partitions.push(pr);
        }
        response.topics.push(tr);
    }
    ctx.respond(&response)
}

fn lookup(
    ctx: &RequestContext<'_>,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    timestamp: i64,
) -> Result<(i64, i64, i32), ErrorCode> {
    let p = ctx
        .broker
        .partitions
        .get(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let epoch_check = if ctx.version() >= 4 {
        current_leader_epoch
    } else {
        -1
    };
    p.check_leader_epoch(epoch_check)?;
    let epoch = p.leader_epoch();
    let log = p.log.read();
    match timestamp {
        LATEST => Ok((-1, p.high_watermark(), epoch)),
        EARLIEST => Ok((-1, log.log_start_offset(), epoch)),
        MAX_TIMESTAMP => match log.max_timestamp() {
            Ok(Some(t)) => Ok((t.timestamp, t.offset, t.leader_epoch.unwrap_or(-1))),
            Ok(None) => Ok((-1, -1, -1)),
            Err(e) => Err(storage_error_code(&e)),
        },
        ts if ts < 0 => Err(ErrorCode::UnsupportedVersion),
        ts => match log.offset_for_timestamp(ts) {
            Ok(Some(t)) if t.offset < p.high_watermark() => {
                Ok((t.timestamp, t.offset, t.leader_epoch.unwrap_or(-1)))
            }
            Ok(_) => Ok((-1, -1, -1)),
            Err(e) => Err(storage_error_code(&e)),
        },
    }
}

pub(crate) fn offset_for_leader_epoch(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: OffsetForLeaderEpochRequest = ctx.decode()?;
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut tr = OffsetForLeaderTopicResult::default();
        tr.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            match ctx.broker.partitions.get(topic.topic.as_str(), p.partition) {
                None => r.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(part) => match part.check_leader_epoch(p.current_leader_epoch) {
                    Err(code) => r.error_code = code.code(),
                    Ok(()) => {
                        let log = part.log.read();
                        if let Some((epoch, end)) = log.end_offset_for_epoch(p.leader_epoch) {
                            r.leader_epoch = epoch;
                            r.end_offset = end;
                        }
                    }
                },
            }
            tr.partitions.push(r);
        }
        response.topics.push(tr);
    }
    ctx.respond(&response)
}
