//! A minimal Kafka wire client and an in-process broker for the broker's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Buf, Bytes, BytesMut};
use fjord_broker::{Broker, BrokerConfig, RunningBroker};
use fjord_protocol::frame::{decode_response, encode_request};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestBroker {
    pub running: Option<RunningBroker>,
    pub addr: SocketAddr,
}

impl TestBroker {
    pub async fn start(dir: &Path, extra: &[&str]) -> TestBroker {
        let mut overrides = vec![
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.display()),
            "group.initial.rebalance.delay.ms=0".to_string(),
        ];
        overrides.extend(extra.iter().map(|s| s.to_string()));
        let config = BrokerConfig::from_sources(None, &overrides).unwrap();
        let broker = Broker::open(config).unwrap();
        let running = broker.serve().await.unwrap();
        let addr = running.local_addrs()[0];
        TestBroker {
            running: Some(running),
            addr,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            correlation: 0,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut buf = BytesMut::zeroed(i32::from_be_bytes(len) as usize);
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(buf.freeze())
    }

    pub async fn send<Req: Encodable>(&mut self, key: ApiKey, version: i16, body: &Req) -> i32 {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("fjord-test"));
        let frame = encode_request(&header, body)
            .unwrap_or_else(|e| panic!("encode {key:?} v{version}: {e}"));
        self.stream.write_all(&frame).await.unwrap();
        self.correlation
    }

    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let id = self.send(key, version, body).await;
        let frame = self
            .read_frame()
            .await
            .expect("broker closed the connection");
        let (correlation, response) = decode_response::<Resp>(key, version, frame).unwrap();
        assert_eq!(correlation, id);
        response
    }

    /// True when the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.stream.read(&mut buf)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Decodes the length-prefixed big-endian i32 at the start of a frame.
pub fn frame_i32(mut b: Bytes) -> i32 {
    b.get_i32()
}
