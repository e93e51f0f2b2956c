//! Feeds arbitrary bytes to the record-batch iterator, validator and record decoder used by
//! the produce path and by storage recovery. Nothing may panic.
#![no_main]

use fjord_protocol::batch::{validate_batch, BatchIter};
use fjord_protocol::records::decode_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for item in BatchIter::new(data) {
        let Ok((_, range)) = item else { break };
        let batch = &data[range];
        if validate_batch(batch).is_ok() {
            let _ = decode_batch(batch);
        }
    }
    // Also the decoder on its own, with a fixed-up CRC so that record parsing is reached.
    if data.len() > 61 {
        let mut owned = data.to_vec();
        let len = (owned.len() - 12) as i32;
        owned[8..12].copy_from_slice(&len.to_be_bytes());
        owned[16] = 2;
        owned[21] &= 0xf8; // no compression: exercise the record parser
        let crc = crc32c_of(&owned[21..]);
        owned[17..21].copy_from_slice(&crc.to_be_bytes());
        let _ = decode_batch(&owned);
    }
});

fn crc32c_of(bytes: &[u8]) -> u32 {
    fjord_protocol::batch::compute_crc(&[&[0u8; 21][..], bytes].concat())
}
