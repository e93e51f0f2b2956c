//! Throws random bytes at a live listener: the broker must never crash or hang, and must keep
//! answering well-formed clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestBroker;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use proptest::prelude::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn arb_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Pure noise.
        proptest::collection::vec(any::<u8>(), 0..512),
        // A plausible length prefix and header, then noise: reaches the decoders.
        (
            0i16..80,
            -1i16..20,
            proptest::collection::vec(any::<u8>(), 0..256)
        )
            .prop_map(|(key, version, body)| {
                let mut v = Vec::new();
                v.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
                v.extend_from_slice(&key.to_be_bytes());
                v.extend_from_slice(&version.to_be_bytes());
                v.extend_from_slice(&7i32.to_be_bytes());
                v.extend_from_slice(&body);
                v
            }),
    ]
}

#[test]
fn random_bytes_never_take_the_broker_down() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = rt.block_on(TestBroker::start(
        dir.path(),
        &["socket.request.max.bytes=65536"],
    ));
    let addr = broker.addr;
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(input in arb_input())| {
        rt.block_on(async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = stream.write_all(&input).await;
            let _ = stream.shutdown().await;
            // Drain whatever the broker answers until it closes or goes quiet.
            let mut buf = [0u8; 4096];
            loop {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        });
    });
    rt.block_on(async {
        let mut c = broker.client().await;
        let resp: ApiVersionsResponse = c
            .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
            .await;
        assert_eq!(resp.error_code, 0);
        broker.shutdown().await;
    });
}
