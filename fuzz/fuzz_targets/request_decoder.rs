//! Feeds arbitrary bytes to the broker's request path: header parsing, then the body decoder
//! of whatever API and version the header names. Nothing may panic or loop.
#![no_main]

use bytes::Bytes;
use fjord_protocol::frame::parse_request;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_request(Bytes::copy_from_slice(data)) {
        let mut body = frame.body.clone();
        let _ = RequestKind::decode(frame.api_key, &mut body, frame.version());
    }
});
