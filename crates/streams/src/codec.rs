//! Serdes: how keys and values become bytes on topics and in state stores.
//!
//! Every key and value type of a stream implements [`Codec`]. The crate implements it for
//! bytes ([`Bytes`], `Vec<u8>`), strings, integers and floats (big-endian, like Kafka's
//! `IntegerSerializer`/`LongSerializer`/`DoubleSerializer`), `()` for absent keys, `Option<T>`
//! for nullable data, [`Windowed`] keys, and any serde type marked with [`JsonValue`] (or
//! wrapped in [`Json`]).

use crate::error::{Result, StreamsError};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

/// Conversion of a key or value to and from the bytes of a record (`None`: a null key or
/// value, i.e. a tombstone for a table value).
pub trait Codec: Sized + Clone + Send + Sync + 'static {
    /// Encodes; `None` writes a null.
    fn encode(&self) -> Result<Option<Bytes>>;
    /// Decodes a record's key or value (`None`: it was null).
    fn decode(bytes: Option<&[u8]>) -> Result<Self>;
}

fn non_null<'a>(bytes: Option<&'a [u8]>, ty: &str) -> Result<&'a [u8]> {
    bytes.ok_or_else(|| StreamsError::serde(format!("null where a {ty} was expected")))
}

impl Codec for Bytes {
    fn encode(&self) -> Result<Option<Bytes>> {
        Ok(Some(self.clone()))
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        Ok(Bytes::copy_from_slice(non_null(bytes, "byte string")?))
    }
}

impl Codec for Vec<u8> {
    fn encode(&self) -> Result<Option<Bytes>> {
        Ok(Some(Bytes::copy_from_slice(self)))
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        Ok(non_null(bytes, "byte string")?.to_vec())
    }
}

impl Codec for String {
    fn encode(&self) -> Result<Option<Bytes>> {
        Ok(Some(Bytes::copy_from_slice(self.as_bytes())))
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        String::from_utf8(non_null(bytes, "string")?.to_vec()).map_err(StreamsError::serde)
    }
}

/// `()` stands for "no key": it encodes as null and decodes from anything.
impl Codec for () {
    fn encode(&self) -> Result<Option<Bytes>> {
        Ok(None)
    }
    fn decode(_bytes: Option<&[u8]>) -> Result<Self> {
        Ok(())
    }
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self) -> Result<Option<Bytes>> {
        match self {
            Some(v) => v.encode(),
            None => Ok(None),
        }
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        match bytes {
            Some(b) => T::decode(Some(b)).map(Some),
            None => Ok(None),
        }
    }
}

macro_rules! big_endian_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self) -> Result<Option<Bytes>> {
                Ok(Some(Bytes::copy_from_slice(&self.to_be_bytes())))
            }
            fn decode(bytes: Option<&[u8]>) -> Result<Self> {
                let b = non_null(bytes, stringify!($t))?;
                let arr = b.try_into().map_err(|_| {
                    StreamsError::serde(format!(
                        "{} needs {} bytes, got {}",
                        stringify!($t),
                        std::mem::size_of::<$t>(),
                        b.len()
                    ))
                })?;
                Ok(<$t>::from_be_bytes(arr))
            }
        }
    )*};
}
big_endian_codec!(i32, i64, u32, u64, f64);

/// Marks a serde type to be encoded as JSON: `impl JsonValue for Order {}` makes `Order` a
/// [`Codec`].
pub trait JsonValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: JsonValue> Codec for T {
    fn encode(&self) -> Result<Option<Bytes>> {
        serde_json::to_vec(self)
            .map(|v| Some(Bytes::from(v)))
            .map_err(StreamsError::serde)
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        serde_json::from_slice(non_null(bytes, "JSON document")?).map_err(StreamsError::serde)
    }
}

/// A JSON-encoded value of any serde type (for types that cannot implement [`JsonValue`],
/// such as `serde_json::Value` or types of other crates).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Json<T>(pub T);

impl<T> Codec for Json<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn encode(&self) -> Result<Option<Bytes>> {
        serde_json::to_vec(&self.0)
            .map(|v| Some(Bytes::from(v)))
            .map_err(StreamsError::serde)
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        serde_json::from_slice(non_null(bytes, "JSON document")?)
            .map(Json)
            .map_err(StreamsError::serde)
    }
}

/// A time window `[start, end)` in milliseconds of event time (session windows and sliding
/// windows are inclusive of `end`: see their docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Start timestamp (inclusive).
    pub start: i64,
    /// End timestamp.
    pub end: i64,
}

/// A key of a windowed aggregation: the record key and its window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

impl<K> Windowed<K> {
    /// A windowed key.
    pub fn new(key: K, start: i64, end: i64) -> Self {
        Windowed {
            key,
            window: Window { start, end },
        }
    }
}

impl<K: std::fmt::Display> std::fmt::Display for Windowed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}/{}", self.key, self.window.start, self.window.end)
    }
}

/// Layout: the key's bytes, then start and end as 8-byte big-endian integers.
impl<K: Codec> Codec for Windowed<K> {
    fn encode(&self) -> Result<Option<Bytes>> {
        let key = self.key.encode()?.unwrap_or_default();
        Ok(Some(windowed_bytes(
            &key,
            self.window.start,
            self.window.end,
        )))
    }
    fn decode(bytes: Option<&[u8]>) -> Result<Self> {
        let (key, start, end) = split_windowed(non_null(bytes, "windowed key")?)?;
        Ok(Windowed::new(K::decode(Some(key))?, start, end))
    }
}

pub(crate) fn windowed_bytes(key: &[u8], start: i64, end: i64) -> Bytes {
    let mut out = Vec::with_capacity(key.len() + 16);
    out.extend_from_slice(key);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&end.to_be_bytes());
    Bytes::from(out)
}

pub(crate) fn split_windowed(b: &[u8]) -> Result<(&[u8], i64, i64)> {
    if b.len() < 16 {
        return Err(StreamsError::serde("windowed key shorter than 16 bytes"));
    }
    let (key, times) = b.split_at(b.len() - 16);
    let (s, e) = times.split_at(8);
    Ok((key, be_i64(s)?, be_i64(e)?))
}

pub(crate) fn be_i64(b: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = b
        .try_into()
        .map_err(|_| StreamsError::serde("expected 8 bytes"))?;
    Ok(i64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u32,
        item: String,
    }
    impl JsonValue for Order {}

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(v: T) {
        let b = v.encode().unwrap();
        assert_eq!(T::decode(b.as_deref()).unwrap(), v);
    }

    #[test]
    fn codecs_round_trip() {
        round_trip("héllo".to_string());
        round_trip(-5i64);
        round_trip(7i32);
        round_trip(1.5f64);
        round_trip(vec![1u8, 2, 3]);
        round_trip(Bytes::from_static(b"x"));
        round_trip(Some(3i64));
        round_trip(None::<i64>);
        round_trip(Order {
            id: 1,
            item: "book".into(),
        });
        round_trip(Json(serde_json::json!({"a": 1})));
        round_trip(Windowed::new("k".to_string(), 60_000, 120_000));
    }

    #[test]
    fn integers_are_big_endian_like_kafka() {
        assert_eq!(
            1i64.encode().unwrap().unwrap().as_ref(),
            &[0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(258i32.encode().unwrap().unwrap().as_ref(), &[0, 0, 1, 2]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(i64::decode(Some(&[1, 2])).is_err());
        assert!(String::decode(None).is_err());
        assert!(String::decode(Some(&[0xff, 0xfe])).is_err());
        assert!(Order::decode(Some(b"{")).is_err());
        assert!(Windowed::<String>::decode(Some(b"short")).is_err());
        assert_eq!(<()>::decode(None).unwrap(), ());
    }
}
