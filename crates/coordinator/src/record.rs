//! The binary key/value schemas of Kafka's `__consumer_offsets` topic, so that Kafka's own
//! tooling (`kafka-console-consumer --formatter ...GroupMetadataMessageFormatter`,
//! `kafka-dump-log --offsets-decoder`) can read what Fjord writes, and Fjord can read what
//! Kafka wrote.
//!
//! Every key and value starts with a big-endian `int16` version. The key version doubles as
//! the record type:
//!
//! | key version | record | key fields |
//! |---|---|---|
//! | 0, 1 | offset commit | `group: string, topic: string, partition: int32` |
//! | 2 | group metadata | `group: string` |
//! | 3+ | records of other group types (KIP-848 and later) | not decoded, see [`RecordKey::Unknown`] |
//!
//! Values (a missing value is a tombstone that deletes the key):
//!
//! * `OffsetCommitValue` versions 0–4: `offset: int64`, `leader_epoch: int32` (v3+),
//!   `metadata: string`, `commit_timestamp: int64`, `expire_timestamp: int64` (v1 only).
//!   Fjord writes version 3, or version 1 when the commit carried an explicit retention time,
//!   as Kafka does.
//! * `GroupMetadataValue` versions 0–4: `protocol_type: string`, `generation: int32`,
//!   `protocol: nullable string`, `leader: nullable string`, `current_state_timestamp: int64`
//!   (v2+), then `members: [member_id, group_instance_id (v3+, nullable), client_id,
//!   client_host, rebalance_timeout (v1+), session_timeout, subscription: bytes,
//!   assignment: bytes]`. Fjord writes version 3.
//!
//! Version 4 of both values is "flexible": compact (unsigned-varint length + 1) strings,
//! bytes and arrays, and a tagged-field section after every struct. Versions 0–3 use `int16`
//! string lengths and `int32` byte and array lengths, `-1` meaning null.
//!
//! Decoding never panics: bad input yields a [`RecordError`]. Trailing bytes after a value
//! are ignored, as Kafka's generated readers do.

use bytes::{BufMut, Bytes, BytesMut};

/// Key version written for offset commits (Kafka writes 1; 0 is read as well).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of group metadata records.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// `OffsetCommitValue` version written for ordinary commits.
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// `OffsetCommitValue` version written when the commit carries an expire timestamp.
pub const OFFSET_COMMIT_VALUE_EXPIRE_VERSION: i16 = 1;
/// `GroupMetadataValue` version written.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// Highest value version understood when reading either value schema.
pub const MAX_VALUE_VERSION: i16 = 4;

/// Why a key or value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The input ended before a field was complete.
    #[error("record truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The schema version is not one this codec knows.
    #[error("unsupported {schema} version {version}")]
    UnsupportedVersion {
        /// Which schema (`OffsetCommitValue`, `GroupMetadataValue`).
        schema: &'static str,
        /// The version found.
        version: i16,
    },
    /// A length prefix was negative (other than the null marker) or absurd.
    #[error("invalid length {length} for {field}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: i64,
    },
    /// A non-nullable field was encoded as null.
    #[error("non-nullable field {field} is null")]
    UnexpectedNull {
        /// The field being read.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// An unsigned varint ran over five bytes.
    #[error("malformed varint in {field}")]
    InvalidVarint {
        /// The field being read.
        field: &'static str,
    },
    /// A string or byte field is too long to be encoded.
    #[error("field {field} is too long to encode ({length} bytes)")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length.
        length: usize,
    },
}

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// A committed offset of one partition for one group (key versions 0 and 1).
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// The metadata of one group (key version 2).
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// A record type this coordinator does not handle (consumer, share and streams group
    /// records of newer Kafka versions, key versions 3 and up). Replay skips these.
    Unknown {
        /// The key version (record type) found.
        version: i16,
    },
}

impl RecordKey {
    /// Encodes the key. Offset commits use key version 1, as Kafka writes them.
    ///
    /// [`RecordKey::Unknown`] encodes as its bare version.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new(false);
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                w.i16(OFFSET_COMMIT_KEY_VERSION);
                w.key_string(group);
                w.key_string(topic);
                w.i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                w.i16(GROUP_METADATA_KEY_VERSION);
                w.key_string(group);
            }
            RecordKey::Unknown { version } => w.i16(*version),
        }
        w.finish()
    }

    /// Decodes a key.
    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("key version")?;
        match version {
            0 | 1 => Ok(RecordKey::OffsetCommit {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            }),
            2 => Ok(RecordKey::GroupMetadata {
                group: r.string("group")?,
            }),
            other => Ok(RecordKey::Unknown { version: other }),
        }
    }

    /// The group id this key belongs to, if the key type is known.
    pub fn group(&self) -> Option<&str> {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => {
                Some(group)
            }
            RecordKey::Unknown { .. } => None,
        }
    }
}

/// The value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch of the last consumed record, `-1` if unknown (stored from v3).
    pub leader_epoch: i32,
    /// Client metadata, empty when the client sent none.
    pub metadata: String,
    /// When the commit was accepted, in ms since the epoch.
    pub commit_timestamp: i64,
    /// Explicit expiry (OffsetCommit v2–v4 `retention_time_ms`), stored only in value v1.
    pub expire_timestamp: Option<i64>,
}

impl OffsetCommitValue {
    /// The version [`encode`](Self::encode) writes for this value: 1 when it has an expire
    /// timestamp, else 3.
    pub fn write_version(&self) -> i16 {
        if self.expire_timestamp.is_some() {
            OFFSET_COMMIT_VALUE_EXPIRE_VERSION
        } else {
            OFFSET_COMMIT_VALUE_VERSION
        }
    }

    /// Encodes with [`write_version`](Self::write_version).
    pub fn encode(&self) -> Bytes {
        // Only string lengths can fail, and the metadata length is bounded by the coordinator
        // (offset.metadata.max.bytes) long before i16::MAX; fall back to an empty metadata
        // rather than panic if a caller builds an absurd value by hand.
        match self.encode_version(self.write_version()) {
            Ok(bytes) => bytes,
            Err(_) => {
                let mut trimmed = self.clone();
                trimmed.metadata.clear();
                trimmed
                    .encode_version(self.write_version())
                    .unwrap_or_default()
            }
        }
    }

    /// Encodes with an explicit schema version (0–4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Result<Bytes, RecordError> {
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "OffsetCommitValue",
                version,
            });
        }
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        w.string("metadata", Some(&self.metadata))?;
        w.i64(self.commit_timestamp);
        if version == 1 {
            w.i64(self.expire_timestamp.unwrap_or(-1));
        }
        w.tagged_fields();
        Ok(w.finish())
    }

    /// Decodes any version 0–4.
    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("value version")?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "OffsetCommitValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp = r.i64("commit_timestamp")?;
        let expire_timestamp = if version == 1 {
            Some(r.i64("expire_timestamp")?).filter(|ts| *ts != -1)
        } else {
            None
        };
        r.skip_tagged_fields()?;
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

/// One member inside a [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// Member id.
    pub member_id: String,
    /// Static membership id (stored from v3).
    pub group_instance_id: Option<String>,
    /// Client id of the member's connection.
    pub client_id: String,
    /// Client host of the member's connection.
    pub client_host: String,
    /// Rebalance timeout in ms (stored from v1; `-1` when read from v0).
    pub rebalance_timeout_ms: i32,
    /// Session timeout in ms.
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    /// The member's assignment for the current generation.
    pub assignment: Bytes,
}

/// The value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Protocol type (`consumer`, `connect`, ...), empty for groups without one.
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol (assignor) name.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its current state, `-1` if unknown (stored from v2).
    pub current_state_timestamp: i64,
    /// Members and their assignments.
    pub members: Vec<MemberMetadataValue>,
}

impl GroupMetadataValue {
    /// Encodes with version 3.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        self.encode_version(GROUP_METADATA_VALUE_VERSION)
    }

    /// Encodes with an explicit schema version (0–4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Result<Bytes, RecordError> {
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "GroupMetadataValue",
                version,
            });
        }
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.string("protocol_type", Some(&self.protocol_type))?;
        w.i32(self.generation);
        w.string("protocol", self.protocol.as_deref())?;
        w.string("leader", self.leader.as_deref())?;
        if version >= 2 {
            w.i64(self.current_state_timestamp);
        }
        w.array_len(self.members.len())?;
        for m in &self.members {
            w.string("member_id", Some(&m.member_id))?;
            if version >= 3 {
                w.string("group_instance_id", m.group_instance_id.as_deref())?;
            }
            w.string("client_id", Some(&m.client_id))?;
            w.string("client_host", Some(&m.client_host))?;
            if version >= 1 {
                w.i32(m.rebalance_timeout_ms);
            }
            w.i32(m.session_timeout_ms);
            w.bytes("subscription", &m.subscription)?;
            w.bytes("assignment", &m.assignment)?;
            w.tagged_fields();
        }
        w.tagged_fields();
        Ok(w.finish())
    }

    /// Decodes any version 0–4.
    pub fn decode(buf: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("value version")?;
        if !(0..=MAX_VALUE_VERSION).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "GroupMetadataValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let protocol_type = r.string("protocol_type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp = if version >= 2 {
            r.i64("current_state_timestamp")?
        } else {
            -1
        };
        let count = r.array_len("members")?;
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = r.string("member_id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string("group_instance_id")?
            } else {
                None
            };
            let client_id = r.string("client_id")?;
            let client_host = r.string("client_host")?;
            let rebalance_timeout_ms = if version >= 1 {
                r.i32("rebalance_timeout")?
            } else {
                -1
            };
            let session_timeout_ms = r.i32("session_timeout")?;
            let subscription = r.bytes("subscription")?;
            let assignment = r.bytes("assignment")?;
            r.skip_tagged_fields()?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        r.skip_tagged_fields()?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// A fully decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    /// An offset commit, or its tombstone when `value` is `None`.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The commit; `None` deletes it.
        value: Option<OffsetCommitValue>,
    },
    /// Group metadata, or its tombstone when `value` is `None`.
    GroupMetadata {
        /// Group id.
        group: String,
        /// The metadata; `None` deletes the group.
        value: Option<GroupMetadataValue>,
    },
    /// A record type this coordinator ignores.
    Unknown {
        /// Its key version.
        key_version: i16,
    },
}

impl CoordinatorRecord {
    /// Decodes a key and an optional value.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        match RecordKey::decode(key)? {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => Ok(CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: value.map(OffsetCommitValue::decode).transpose()?,
            }),
            RecordKey::GroupMetadata { group } => Ok(CoordinatorRecord::GroupMetadata {
                group,
                value: value.map(GroupMetadataValue::decode).transpose()?,
            }),
            RecordKey::Unknown { version } => Ok(CoordinatorRecord::Unknown {
                key_version: version,
            }),
        }
    }
}

struct Writer {
    buf: BytesMut,
    flexible: bool,
}

impl Writer {
    fn new(flexible: bool) -> Self {
        Writer {
            buf: BytesMut::with_capacity(64),
            flexible,
        }
    }

    fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Keys are never flexible and their strings are bounded by group ids and topic names;
    /// an over-long string is truncated on a character boundary rather than failing.
    fn key_string(&mut self, s: &str) {
        let mut end = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf.put_i16(end as i16);
        self.buf.put_slice(&s.as_bytes()[..end]);
    }

    fn string(&mut self, field: &'static str, s: Option<&str>) -> Result<(), RecordError> {
        match s {
            None if self.flexible => self.uvarint(0),
            None => self.buf.put_i16(-1),
            Some(s) if self.flexible => {
                let len = u32::try_from(s.len())
                    .ok()
                    .filter(|l| *l < u32::MAX)
                    .ok_or(RecordError::TooLong {
                        field,
                        length: s.len(),
                    })?;
                self.uvarint(len + 1);
                self.buf.put_slice(s.as_bytes());
            }
            Some(s) => {
                let len = i16::try_from(s.len()).map_err(|_| RecordError::TooLong {
                    field,
                    length: s.len(),
                })?;
                self.buf.put_i16(len);
                self.buf.put_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    fn bytes(&mut self, field: &'static str, b: &[u8]) -> Result<(), RecordError> {
        let too_long = RecordError::TooLong {
            field,
            length: b.len(),
        };
        if self.flexible {
            let len = u32::try_from(b.len())
                .ok()
                .filter(|l| *l < u32::MAX)
                .ok_or(too_long)?;
            self.uvarint(len + 1);
        } else {
            let len = i32::try_from(b.len()).map_err(|_| too_long)?;
            self.buf.put_i32(len);
        }
        self.buf.put_slice(b);
        Ok(())
    }

    fn array_len(&mut self, len: usize) -> Result<(), RecordError> {
        let too_long = RecordError::TooLong {
            field: "members",
            length: len,
        };
        if self.flexible {
            let len = u32::try_from(len)
                .ok()
                .filter(|l| *l < u32::MAX)
                .ok_or(too_long)?;
            self.uvarint(len + 1);
        } else {
            let len = i32::try_from(len).map_err(|_| too_long)?;
            self.buf.put_i32(len);
        }
        Ok(())
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader { buf, flexible }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn uvarint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.array::<1>(field)?[0];
            if i == 4 && byte > 0x0f {
                return Err(RecordError::InvalidVarint { field });
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidVarint { field })
    }

    /// Reads a length prefix; `None` is the null marker.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, RecordError> {
        if self.flexible {
            let n = self.uvarint(field)?;
            return Ok(n.checked_sub(1).map(|n| n as usize));
        }
        let n = if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(RecordError::InvalidLength { field, length: n }),
            n => Ok(Some(n as usize)),
        }
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        match self.length(field, false)? {
            None => Ok(None),
            Some(len) => {
                let raw = self.take(len, field)?;
                std::str::from_utf8(raw)
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| RecordError::InvalidUtf8 { field })
            }
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull { field })
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        match self.length(field, true)? {
            None => Err(RecordError::UnexpectedNull { field }),
            Some(len) => Ok(Bytes::copy_from_slice(self.take(len, field)?)),
        }
    }

    fn array_len(&mut self, field: &'static str) -> Result<usize, RecordError> {
        let len = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull { field })?;
        // Every element takes at least one byte: reject counts the input cannot hold before
        // looping over them.
        if len > self.buf.len() {
            return Err(RecordError::InvalidLength {
                field,
                length: len as i64,
            });
        }
        Ok(len)
    }

    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            let _tag = self.uvarint("tag")?;
            let size = self.uvarint("tag size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_value() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("c-1".into()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![MemberMetadataValue {
                member_id: "c-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 30_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"\x00\x01sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        }
    }

    #[test]
    fn key_bytes_match_kafka_layout() {
        let key = RecordKey::GroupMetadata { group: "g".into() };
        assert_eq!(&key.encode()[..], &[0, 2, 0, 1, b'g']);
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(
            &key.encode()[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]
        );
        assert_eq!(RecordKey::decode(&key.encode()), Ok(key));
        // Key version 0 is the legacy offset commit key and reads the same way.
        let v0 = [0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
        assert!(matches!(
            RecordKey::decode(&v0),
            Ok(RecordKey::OffsetCommit { partition: 3, .. })
        ));
        assert_eq!(
            RecordKey::decode(&[0, 9, 1, 2]),
            Ok(RecordKey::Unknown { version: 9 })
        );
    }

    #[test]
    fn offset_value_v3_layout() {
        let v = OffsetCommitValue {
            offset: 5,
            leader_epoch: 2,
            metadata: "m".into(),
            commit_timestamp: 9,
            expire_timestamp: None,
        };
        let bytes = v.encode();
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&9i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(OffsetCommitValue::decode(&bytes), Ok(v));
    }

    #[test]
    fn offset_value_with_expiry_is_v1() {
        let v = OffsetCommitValue {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 9,
            expire_timestamp: Some(100),
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(OffsetCommitValue::decode(&bytes), Ok(v));
    }

    #[test]
    fn group_value_all_versions() {
        let v = group_value();
        for version in 0..=MAX_VALUE_VERSION {
            let bytes = v.encode_version(version).unwrap();
            let back = GroupMetadataValue::decode(&bytes).unwrap();
            assert_eq!(back.generation, 7);
            assert_eq!(back.members[0].assignment, v.members[0].assignment);
            if version >= 3 {
                assert_eq!(back, v);
            }
        }
    }

    #[test]
    fn flexible_value_skips_unknown_tags() {
        let v = OffsetCommitValue {
            offset: 1,
            leader_epoch: 1,
            metadata: "x".into(),
            commit_timestamp: 2,
            expire_timestamp: None,
        };
        let mut bytes = v.encode_version(4).unwrap().to_vec();
        // Replace the empty tagged-field section by one unknown tag 7 of 2 bytes.
        bytes.pop();
        bytes.extend_from_slice(&[1, 7, 2, 0xaa, 0xbb]);
        assert_eq!(OffsetCommitValue::decode(&bytes), Ok(v));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(RecordKey::decode(&[]).is_err());
        assert!(RecordKey::decode(&[0, 2, 0, 5, b'a']).is_err());
        assert!(RecordKey::decode(&[0, 2, 0xff, 0xfe]).is_err());
        assert!(OffsetCommitValue::decode(&[0, 9]).is_err());
        // A member count far beyond the input.
        let mut bytes = group_value().encode().unwrap().to_vec();
        // version, "consumer", generation, "range", "c-1", current_state_timestamp
        let members_at = 2 + (2 + 8) + 4 + (2 + 5) + (2 + 3) + 8;
        assert_eq!(&bytes[members_at..members_at + 4], &1i32.to_be_bytes());
        bytes.truncate(members_at);
        bytes.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            GroupMetadataValue::decode(&bytes),
            Err(RecordError::InvalidLength { .. })
        ));
    }
}
