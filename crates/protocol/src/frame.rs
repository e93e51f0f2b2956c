//! Length-prefixed frames: request headers in, responses out (and the reverse for clients).
//!
//! Every Kafka message travels as `[int32 length][header][body]`. The header version depends
//! on the API and its version (flexible versions add tagged fields); the ApiVersions response
//! always uses header v0 so that a client can read it whatever version it asked for.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;

/// Why a frame could not be turned into a request.
#[derive(Debug, Error)]
pub enum FrameError {
    /// Shorter than the fixed part of a request header.
    #[error("request frame of {0} bytes is too short for a header")]
    TooShort(usize),
    /// An API key this broker does not know.
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey {
        /// The key.
        api_key: i16,
        /// Its correlation id.
        correlation_id: i32,
    },
    /// The header or body did not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// Encoding a message failed (a field does not exist at that version).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// Which message.
        what: &'static str,
        /// Encoder message.
        reason: String,
    },
}

/// A decoded request header and the still-encoded body.
#[derive(Debug, Clone)]
pub struct RequestFrame {
    /// The API.
    pub api_key: ApiKey,
    /// The header as sent.
    pub header: RequestHeader,
    /// The body bytes (zero-copy slice of the frame).
    pub body: Bytes,
}

impl RequestFrame {
    /// The request's API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The correlation id to echo.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// Decodes the body as `T` at the header's version.
    pub fn decode_body<T: Decodable>(&self) -> Result<T, FrameError> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version()).map_err(|e| FrameError::Malformed {
            what: "request body",
            reason: e.to_string(),
        })
    }
}

/// Reads the fixed part of a request header without trusting the rest: api key, version,
/// correlation id. Useful to answer even when the rest is garbage.
pub fn peek_header(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let mut b = &frame[..8];
    Some((b.get_i16(), b.get_i16(), b.get_i32()))
}

/// Parses a request frame (without its length prefix).
pub fn parse_request(mut frame: Bytes) -> Result<RequestFrame, FrameError> {
    let (api_key, version, correlation_id) =
        peek_header(&frame).ok_or(FrameError::TooShort(frame.len()))?;
    let key = ApiKey::try_from(api_key).map_err(|_| FrameError::UnknownApiKey {
        api_key,
        correlation_id,
    })?;
    let header_version = key.request_header_version(version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| FrameError::Malformed {
            what: "request header",
            reason: e.to_string(),
        })?;
    Ok(RequestFrame {
        api_key: key,
        header,
        body: frame,
    })
}

/// Encodes a complete response frame, length prefix included.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, FrameError> {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    encode_frame(
        &header,
        header_version,
        body,
        version,
        ("response header", "response body"),
    )
}

/// Encodes a request frame, length prefix included (client side).
pub fn encode_request<T: Encodable>(header: &RequestHeader, body: &T) -> Result<Bytes, FrameError> {
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| FrameError::Encode {
        what: "request header",
        reason: format!("unknown api key {}", header.request_api_key),
    })?;
    let version = header.request_api_version;
    let header_version = key.request_header_version(version);
    encode_frame(
        header,
        header_version,
        body,
        version,
        ("request header", "request body"),
    )
}

/// `[int32 size][header][body]` with the size computed up front, so the buffer is allocated once.
fn encode_frame<H: Encodable, T: Encodable>(
    header: &H,
    header_version: i16,
    body: &T,
    version: i16,
    (header_what, body_what): (&'static str, &'static str),
) -> Result<Bytes, FrameError> {
    let enc = |what: &'static str| {
        move |e: anyhow::Error| FrameError::Encode {
            what,
            reason: e.to_string(),
        }
    };
    let size = header
        .compute_size(header_version)
        .map_err(enc(header_what))?
        + body.compute_size(version).map_err(enc(body_what))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(enc(header_what))?;
    body.encode(&mut buf, version).map_err(enc(body_what))?;
    Ok(buf.freeze())
}

/// Decodes a response frame (without its length prefix) for a request of `api_key`/`version`
/// (client side). Returns the correlation id and the body.
pub fn decode_response<T: Decodable>(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, T), FrameError> {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header =
        ResponseHeader::decode(&mut frame, header_version).map_err(|e| FrameError::Malformed {
            what: "response header",
            reason: e.to_string(),
        })?;
    let body = T::decode(&mut frame, version).map_err(|e| FrameError::Malformed {
        what: "response body",
        reason: e.to_string(),
    })?;
    Ok((header.correlation_id, body))
}
