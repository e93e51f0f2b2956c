//! Property tests for the `__consumer_offsets` codec: round trips over every schema version,
//! and garbage or mangled input never panics.

use bytes::Bytes;
use fjord_coordinator::record::{
    CoordinatorRecord, GroupMetadataValue, MemberMetadataValue, OffsetCommitValue, RecordKey,
    MAX_VALUE_VERSION,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,24}",
        ".{0,12}", // any unicode
    ]
}

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn member() -> impl Strategy<Value = MemberMetadataValue> {
    (
        text(),
        proptest::option::of(text()),
        text(),
        text(),
        any::<i32>(),
        any::<i32>(),
        bytes(),
        bytes(),
    )
        .prop_map(
            |(
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance,
                session,
                sub,
                assign,
            )| {
                MemberMetadataValue {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    rebalance_timeout_ms: rebalance,
                    session_timeout_ms: session,
                    subscription: sub,
                    assignment: assign,
                }
            },
        )
}

fn group_value() -> impl Strategy<Value = GroupMetadataValue> {
    (
        text(),
        any::<i32>(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<i64>(),
        proptest::collection::vec(member(), 0..5),
    )
        .prop_map(
            |(protocol_type, generation, protocol, leader, ts, members)| GroupMetadataValue {
                protocol_type,
                generation,
                protocol,
                leader,
                current_state_timestamp: ts,
                members,
            },
        )
}

fn offset_value() -> impl Strategy<Value = OffsetCommitValue> {
    (
        any::<i64>(),
        any::<i32>(),
        text(),
        any::<i64>(),
        proptest::option::of(any::<i64>().prop_filter("-1 means none", |t| *t != -1)),
    )
        .prop_map(
            |(offset, leader_epoch, metadata, commit_timestamp, expire_timestamp)| {
                OffsetCommitValue {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp,
                    expire_timestamp,
                }
            },
        )
}

/// What a version keeps of a group value.
fn project_group(v: &GroupMetadataValue, version: i16) -> GroupMetadataValue {
    let mut p = v.clone();
    if version < 2 {
        p.current_state_timestamp = -1;
    }
    for m in &mut p.members {
        if version < 3 {
            m.group_instance_id = None;
        }
        if version < 1 {
            m.rebalance_timeout_ms = -1;
        }
    }
    p
}

/// What a version keeps of an offset value.
fn project_offset(v: &OffsetCommitValue, version: i16) -> OffsetCommitValue {
    let mut p = v.clone();
    if version < 3 {
        p.leader_epoch = -1;
    }
    if version != 1 {
        p.expire_timestamp = None;
    }
    p
}

proptest! {
    #[test]
    fn keys_round_trip(group in text(), topic in text(), partition in any::<i32>()) {
        let key = RecordKey::OffsetCommit { group: group.clone(), topic, partition };
        prop_assert_eq!(RecordKey::decode(&key.encode()), Ok(key));
        let key = RecordKey::GroupMetadata { group };
        prop_assert_eq!(RecordKey::decode(&key.encode()), Ok(key));
    }

    #[test]
    fn group_values_round_trip(v in group_value()) {
        // The written version keeps everything.
        prop_assert_eq!(GroupMetadataValue::decode(&v.encode().unwrap()), Ok(v.clone()));
        for version in 0..=MAX_VALUE_VERSION {
            let bytes = v.encode_version(version).unwrap();
            prop_assert_eq!(GroupMetadataValue::decode(&bytes), Ok(project_group(&v, version)));
        }
    }

    #[test]
    fn offset_values_round_trip(v in offset_value()) {
        let written = v.encode();
        prop_assert_eq!(OffsetCommitValue::decode(&written), Ok(project_offset(&v, v.write_version())));
        for version in 0..=MAX_VALUE_VERSION {
            let bytes = v.encode_version(version).unwrap();
            prop_assert_eq!(OffsetCommitValue::decode(&bytes), Ok(project_offset(&v, version)));
        }
    }

    #[test]
    fn garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 0..64),
                            value in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = RecordKey::decode(&key);
        let _ = OffsetCommitValue::decode(&value);
        let _ = GroupMetadataValue::decode(&value);
        let _ = CoordinatorRecord::decode(&key, Some(&value));
        let _ = CoordinatorRecord::decode(&key, None);
    }

    #[test]
    fn garbage_with_valid_version_never_panics(version in 0i16..=4,
                                               body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut value = version.to_be_bytes().to_vec();
        value.extend_from_slice(&body);
        let _ = OffsetCommitValue::decode(&value);
        let _ = GroupMetadataValue::decode(&value);
    }

    #[test]
    fn mangled_values_never_panic(v in group_value(), version in 0i16..=4,
                                  cut in any::<prop::sample::Index>(),
                                  flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = v.encode_version(version).unwrap().to_vec();
        // Truncated anywhere: an error, never a panic or a wrong success.
        let at = cut.index(bytes.len());
        prop_assert!(GroupMetadataValue::decode(&bytes[..at]).is_err());
        // A flipped bit: anything but a panic.
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        let _ = GroupMetadataValue::decode(&flipped);
    }
}

#[test]
fn kafka_written_group_metadata_v3_decodes() {
    // A GroupMetadataValue v3 laid out by hand from Kafka's schema: protocol_type
    // "consumer", generation 1, protocol "range", leader "m", timestamp 5, one member
    // "m" (instance null) client "c" host "/h" rebalance 300000 session 45000,
    // subscription [0,1], assignment [2].
    let mut v: Vec<u8> = vec![0, 3];
    v.extend_from_slice(&[0, 8]);
    v.extend_from_slice(b"consumer");
    v.extend_from_slice(&1i32.to_be_bytes());
    v.extend_from_slice(&[0, 5]);
    v.extend_from_slice(b"range");
    v.extend_from_slice(&[0, 1, b'm']);
    v.extend_from_slice(&5i64.to_be_bytes());
    v.extend_from_slice(&1i32.to_be_bytes());
    v.extend_from_slice(&[0, 1, b'm']);
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v.extend_from_slice(&[0, 1, b'c']);
    v.extend_from_slice(&[0, 2, b'/', b'h']);
    v.extend_from_slice(&300_000i32.to_be_bytes());
    v.extend_from_slice(&45_000i32.to_be_bytes());
    v.extend_from_slice(&2i32.to_be_bytes());
    v.extend_from_slice(&[0, 1]);
    v.extend_from_slice(&1i32.to_be_bytes());
    v.extend_from_slice(&[2]);
    let decoded = GroupMetadataValue::decode(&v).unwrap();
    assert_eq!(decoded.protocol.as_deref(), Some("range"));
    assert_eq!(decoded.members.len(), 1);
    assert_eq!(decoded.members[0].group_instance_id, None);
    assert_eq!(decoded.members[0].rebalance_timeout_ms, 300_000);
    assert_eq!(&decoded.members[0].assignment[..], &[2]);
    // And Fjord writes the same bytes.
    assert_eq!(&decoded.encode().unwrap()[..], &v[..]);
}
