//! Record-batch compression codecs with Kafka's codec ids.
//!
//! Snappy input may be raw or in the xerial framing the Java client writes
//! (`\x82SNAPPY\0` + blocks); output uses the xerial framing, which every client reads.
//! LZ4 uses the standard LZ4 frame format with independent blocks, as Kafka does for v2.

use std::io::{Read, Write};
use thiserror::Error;

/// A compression codec of the records section of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// snappy (id 2).
    Snappy,
    /// lz4 frame (id 3).
    Lz4,
    /// zstd (id 4).
    Zstd,
}

/// A codec failed on its input.
#[derive(Debug, Error)]
#[error("{codec:?} {op} failed: {reason}")]
pub struct CompressionError {
    /// The codec.
    pub codec: Compression,
    /// "compress" or "decompress".
    pub op: &'static str,
    /// What went wrong.
    pub reason: String,
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
const XERIAL_BLOCK: usize = 32 * 1024;
/// Decompressed output is capped so a small malicious batch cannot exhaust memory.
const MAX_DECOMPRESSED: u64 = 1 << 30;

impl Compression {
    /// Looks up Kafka's codec id (attributes bits 0–2).
    pub fn from_id(id: i16) -> Option<Self> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// Kafka's codec id.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Parses Kafka's `compression.type` names (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// Kafka's name of the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    fn err(self, op: &'static str, reason: impl ToString) -> CompressionError {
        CompressionError {
            codec: self,
            op,
            reason: reason.to_string(),
        }
    }

    /// Compresses `input`.
    pub fn compress(self, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
        let op = "compress";
        match self {
            Compression::None => Ok(input.to_vec()),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(input.len() / 2),
                    flate2::Compression::fast(),
                );
                enc.write_all(input).map_err(|e| self.err(op, e))?;
                enc.finish().map_err(|e| self.err(op, e))
            }
            Compression::Snappy => {
                let mut out = Vec::with_capacity(input.len() / 2 + XERIAL_HEADER_LEN);
                out.extend_from_slice(XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                let mut encoder = snap::raw::Encoder::new();
                for chunk in input.chunks(XERIAL_BLOCK) {
                    let block = encoder.compress_vec(chunk).map_err(|e| self.err(op, e))?;
                    out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                Ok(out)
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                    info,
                    Vec::with_capacity(input.len() / 2),
                );
                enc.write_all(input).map_err(|e| self.err(op, e))?;
                enc.finish().map_err(|e| self.err(op, e))
            }
            Compression::Zstd => zstd::bulk::compress(input, 3).map_err(|e| self.err(op, e)),
        }
    }

    /// Decompresses `input`.
    pub fn decompress(self, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
        let op = "decompress";
        let mut out = Vec::with_capacity(input.len() * 3);
        match self {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(input)
                    .take(MAX_DECOMPRESSED)
                    .read_to_end(&mut out)
                    .map_err(|e| self.err(op, e))?;
            }
            Compression::Snappy => {
                if input.starts_with(XERIAL_MAGIC) && input.len() >= XERIAL_HEADER_LEN {
                    let mut rest = &input[XERIAL_HEADER_LEN..];
                    let mut decoder = snap::raw::Decoder::new();
                    while !rest.is_empty() {
                        if rest.len() < 4 {
                            return Err(self.err(op, "truncated xerial block length"));
                        }
                        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                        let len = usize::try_from(len).map_err(|e| self.err(op, e))?;
                        if rest.len() < 4 + len {
                            return Err(self.err(op, "truncated xerial block"));
                        }
                        let block = decoder
                            .decompress_vec(&rest[4..4 + len])
                            .map_err(|e| self.err(op, e))?;
                        out.extend_from_slice(&block);
                        if out.len() as u64 > MAX_DECOMPRESSED {
                            return Err(self.err(op, "decompressed size over limit"));
                        }
                        rest = &rest[4 + len..];
                    }
                } else {
                    let len = snap::raw::decompress_len(input).map_err(|e| self.err(op, e))?;
                    if len as u64 > MAX_DECOMPRESSED {
                        return Err(self.err(op, "decompressed size over limit"));
                    }
                    out = snap::raw::Decoder::new()
                        .decompress_vec(input)
                        .map_err(|e| self.err(op, e))?;
                }
            }
            Compression::Lz4 => {
                lz4_flex::frame::FrameDecoder::new(input)
                    .take(MAX_DECOMPRESSED)
                    .read_to_end(&mut out)
                    .map_err(|e| self.err(op, e))?;
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(input)
                    .map_err(|e| self.err(op, e))?
                    .take(MAX_DECOMPRESSED)
                    .read_to_end(&mut out)
                    .map_err(|e| self.err(op, e))?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = codec.compress(&input).unwrap();
            assert_eq!(codec.decompress(&packed).unwrap(), input, "{codec:?}");
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let input = b"hello hello hello hello".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(Compression::Snappy.decompress(&raw).unwrap(), input);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                codec.decompress(b"\x82SNAPPY\x00garbage-garbage").is_err(),
                "{codec:?}"
            );
        }
    }
}
