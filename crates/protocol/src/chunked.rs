//! Writing a Kafka message as chunks: the fixed fields go into a small buffer, and record
//! data (a produce request's batches, a fetch response's segment bytes) travels as its own
//! `Bytes` between the pieces, never copied. The socket takes the chunks with one vectored
//! write. Used by the broker's FetchResponse encoder and the client's ProduceRequest encoder,
//! each checked byte for byte against kafka-protocol's generated code.

use bytes::{BufMut, Bytes, BytesMut};

/// Builds one frame as chunks; `flexible` selects compact lengths and tagged fields.
#[derive(Debug)]
pub struct ChunkWriter {
    flexible: bool,
    current: BytesMut,
    chunks: Vec<Bytes>,
}

impl ChunkWriter {
    /// A writer for a message version that is `flexible` (KIP-482) or not.
    pub fn new(flexible: bool) -> Self {
        ChunkWriter {
            flexible,
            current: BytesMut::with_capacity(256),
            chunks: Vec::with_capacity(8),
        }
    }

    /// The buffer for fixed-size fields (`put_i16`, `put_i32`, ...).
    pub fn fixed(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    /// An unsigned varint.
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.current.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.current.put_u8(v as u8);
    }

    /// An array's length (compact from flexible versions on).
    pub fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.current.put_i32(n as i32);
        }
    }

    /// A non-null string (compact from flexible versions on).
    pub fn string(&mut self, s: &[u8]) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.current.put_i16(s.len() as i16);
        }
        self.current.put_slice(s);
    }

    /// A null string (compact from flexible versions on).
    pub fn null_string(&mut self) {
        if self.flexible {
            self.uvarint(0);
        } else {
            self.current.put_i16(-1);
        }
    }

    /// An empty tagged-field section (flexible versions only).
    pub fn tagged_fields(&mut self) {
        if self.flexible {
            self.current.put_u8(0);
        }
    }

    /// Nullable bytes; the data itself becomes a chunk of its own.
    pub fn records(&mut self, records: Option<&Bytes>) {
        match records {
            None => {
                if self.flexible {
                    self.uvarint(0);
                } else {
                    self.current.put_i32(-1);
                }
            }
            Some(data) => {
                if self.flexible {
                    self.uvarint(data.len() as u64 + 1);
                } else {
                    self.current.put_i32(data.len() as i32);
                }
                if !data.is_empty() {
                    let head = std::mem::take(&mut self.current).freeze();
                    self.chunks.push(head);
                    self.chunks.push(data.clone());
                }
            }
        }
    }

    /// The complete frame as chunks, its int32 size first.
    pub fn finish(mut self) -> Vec<Bytes> {
        let tail = self.current.freeze();
        if !tail.is_empty() {
            self.chunks.push(tail);
        }
        let size: usize = self.chunks.iter().map(Bytes::len).sum();
        let mut out = Vec::with_capacity(self.chunks.len() + 1);
        out.push(Bytes::copy_from_slice(&(size as i32).to_be_bytes()));
        out.extend(self.chunks);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_travels_as_its_own_chunk_behind_a_size() {
        let data = Bytes::from_static(b"records");
        let mut w = ChunkWriter::new(true);
        w.fixed().put_i32(7);
        w.string(b"t");
        w.records(Some(&data));
        w.tagged_fields();
        let chunks = w.finish();
        assert_eq!(chunks.len(), 4);
        assert_eq!(&chunks[0][..], &15i32.to_be_bytes());
        assert_eq!(&chunks[1][..], &[0, 0, 0, 7, 2, b't', 8]);
        assert_eq!(chunks[2].as_ptr(), data.as_ptr(), "not copied");
        assert_eq!(&chunks[3][..], &[0]);
    }
}
