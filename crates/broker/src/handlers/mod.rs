//! Request routing: header parsing, version checks and one handler per API.

mod admin;
mod api_versions;
mod configs;
mod fetch;
mod group_apis;
mod list_offsets;
mod metadata;
mod produce;

use crate::broker::Broker;
use crate::server::{CloseReason, ResponseChunks};
use bytes::Bytes;
use fjord_protocol::frame::{
    encode_response, parse_request, peek_header, FrameError, RequestFrame,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) use api_versions::supported_range;

/// Handles one request frame. `Ok(None)` means no response (acks=0 produce).
pub(crate) async fn handle(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<ResponseChunks>, CloseReason> {
    let (raw_key, raw_version, correlation_id) = peek_header(&frame).ok_or_else(|| {
        CloseReason::Protocol(format!(
            "request of {} bytes is too short for a header",
            frame.len()
        ))
    })?;
    // ApiVersions must be answered even when its version is unknown (KIP-511): reply v0 with
    // UNSUPPORTED_VERSION and the list of supported versions.
    if raw_key == ApiKey::ApiVersions as i16 && raw_version > api_versions::MAX_API_VERSIONS {
        tracing::debug!(%peer, version = raw_version, "ApiVersions version too new; answering with v0");
        return Ok(Some(vec![api_versions::unsupported_version_response(
            correlation_id,
        )
        .map_err(|e| CloseReason::Protocol(e.to_string()))?]));
    }
    let request = parse_request(frame).map_err(|e| CloseReason::Protocol(e.to_string()))?;
    let key = request.api_key;
    let version = request.version();
    match supported_range(key) {
        Some((min, max)) if version >= min && version <= max => {}
        Some((min, max)) => {
            return Err(CloseReason::Protocol(format!(
                "{key:?} v{version} is not supported (supported: {min}..={max}); correlation id {correlation_id}"
            )))
        }
        None => {
            return Err(CloseReason::Protocol(format!(
                "{key:?} (key {raw_key}) is not supported by this broker; correlation id {correlation_id}"
            )))
        }
    }
    let ctx = RequestContext {
        broker,
        request: &request,
        peer,
    };
    let result = match key {
        ApiKey::ApiVersions => api_versions::handle(&ctx),
        ApiKey::Produce => produce::handle(&ctx).await,
        ApiKey::Fetch => fetch::handle(&ctx).await,
        ApiKey::ListOffsets => list_offsets::handle(&ctx),
        ApiKey::Metadata => metadata::handle(&ctx).await,
        ApiKey::CreateTopics => admin::create_topics(&ctx),
        ApiKey::DeleteTopics => admin::delete_topics(&ctx),
        ApiKey::CreatePartitions => admin::create_partitions(&ctx),
        ApiKey::DeleteRecords => admin::delete_records(&ctx),
        ApiKey::OffsetForLeaderEpoch => list_offsets::offset_for_leader_epoch(&ctx),
        ApiKey::InitProducerId => admin::init_producer_id(&ctx),
        ApiKey::DescribeCluster => admin::describe_cluster(&ctx),
        ApiKey::SaslHandshake => admin::sasl_handshake(&ctx),
        ApiKey::SaslAuthenticate => admin::sasl_authenticate(&ctx),
        ApiKey::DescribeConfigs => configs::describe_configs(&ctx),
        ApiKey::IncrementalAlterConfigs => configs::incremental_alter_configs(&ctx),
        ApiKey::AlterConfigs => configs::alter_configs(&ctx),
        ApiKey::FindCoordinator
        | ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::OffsetDelete
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::DeleteGroups => group_apis::handle(&ctx).await,
        _ => Err(FrameError::Malformed {
            what: "request",
            reason: format!("{key:?} is not routed"),
        }),
    };
    result.map_err(|e| {
        CloseReason::Protocol(format!(
            "{key:?} v{version} (correlation id {correlation_id}): {e}"
        ))
    })
}

/// What a handler sees of its request.
pub(crate) struct RequestContext<'a> {
    pub(crate) broker: &'a Arc<Broker>,
    pub(crate) request: &'a RequestFrame,
    pub(crate) peer: SocketAddr,
}

impl RequestContext<'_> {
    pub(crate) fn version(&self) -> i16 {
        self.request.version()
    }

    pub(crate) fn decode<T: kafka_protocol::protocol::Decodable>(&self) -> Result<T, FrameError> {
        self.request.decode_body()
    }

    /// Encodes `body` as the single-chunk response to this request.
    pub(crate) fn respond<T: Encodable>(
        &self,
        body: &T,
    ) -> Result<Option<ResponseChunks>, FrameError> {
        let bytes = encode_response(
            self.request.api_key,
            self.version(),
            self.request.correlation_id(),
            body,
        )?;
        Ok(Some(vec![bytes]))
    }

    pub(crate) fn client_id(&self) -> String {
        self.request
            .header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

pub(crate) type HandlerResult = Result<Option<ResponseChunks>, FrameError>;

/// Authorized-operation bit sets returned when a client asks for them. Without an authorizer
/// Kafka grants every operation a resource type supports (`AclOperation` bit positions):
/// topics READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub(crate) const TOPIC_OPERATIONS: i32 = 3576;
/// Cluster: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPERATIONS: i32 = 8096;
/// Groups: READ, DELETE, DESCRIBE.
pub(crate) const GROUP_OPERATIONS: i32 = 328;
/// The value meaning "not requested".
pub(crate) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// `StrBytes` from an owned string.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
