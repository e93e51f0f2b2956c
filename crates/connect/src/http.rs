//! A small HTTP/1.1 client (plain `http://` only) for the HTTP sink and for tests of the REST API.
//!
//! Built on hyper's connection-level client, which axum already brings in, so the HTTP sink
//! adds no TLS stack or connection-pool dependency: one connection per request is plenty for
//! batched POSTs.

use crate::error::{ConnectError, Result};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Splits `http://host:port/path` into `(host:port, /path)`.
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ConnectError::External(format!("only http:// URLs are supported: {url}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// Sends one request; `body` is sent as `application/json` when given.
pub async fn request(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<HttpResponse> {
    let (authority, path) = split_url(url)?;
    let fut = async {
        let stream = tokio::net::TcpStream::connect(&authority).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError::External(format!("HTTP handshake with {authority}: {e}")))?;
        let driver = tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut builder = Request::builder()
            .method(method)
            .uri(&path)
            .header("host", &authority);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let req = builder
            .body(Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| ConnectError::External(format!("bad HTTP request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ConnectError::External(format!("HTTP {method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ConnectError::External(format!("HTTP {method} {url}: {e}")))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(HttpResponse { status, body })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ConnectError::External(format!("HTTP {method} {url} timed out")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8083/connectors").unwrap(),
            ("127.0.0.1:8083".into(), "/connectors".into())
        );
        assert_eq!(split_url("http://h").unwrap(), ("h:80".into(), "/".into()));
        assert!(split_url("https://h").is_err());
    }
}
