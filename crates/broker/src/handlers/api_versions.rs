//! ApiVersions: the table of APIs and versions this broker serves.

use super::{HandlerResult, RequestContext};
use bytes::Bytes;
use fjord_common::ErrorCode;
use fjord_protocol::frame::{encode_response, FrameError};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

/// Highest ApiVersions version served.
pub(crate) const MAX_API_VERSIONS: i16 = 4;

/// Advertised ranges. Produce is advertised from 0 although only 3+ is accepted: librdkafka
/// before 2.11.1 only compresses when Produce v0 is advertised (KAFKA-18659), exactly as Kafka
/// 4 does. Fetch and Produce stay below 13 until topic ids are used on those paths.
const ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, MAX_API_VERSIONS),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
];

/// The accepted version range of an API, if it is served.
pub(crate) fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    ADVERTISED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(k, min, max)| match k {
            ApiKey::Produce => (3, *max),
            _ => (*min, *max),
        })
}

fn api_keys() -> Vec<ApiVersion> {
    ADVERTISED
        .iter()
        .map(|(k, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect()
}

pub(crate) fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: ApiVersionsRequest = ctx.decode()?;
    if ctx.version() >= 3 {
        tracing::debug!(
            peer = %ctx.peer,
            client = %request.client_software_name.as_str(),
            client_version = %request.client_software_version.as_str(),
            "client connected"
        );
    }
    let mut response = ApiVersionsResponse::default();
    response.error_code = 0;
    response.api_keys = api_keys();
    ctx.respond(&response)
}

/// The v0 answer to an ApiVersions request whose version is too new.
pub(crate) fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, FrameError> {
    let mut response = ApiVersionsResponse::default();
    response.error_code = ErrorCode::UnsupportedVersion.code();
    response.api_keys = api_keys();
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
}
