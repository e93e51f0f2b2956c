//! Java's default partitioner: murmur2 of the serialized key for keyed records, sticky
//! partitions for keyless ones.
//!
//! Placement must match the Java client exactly so that a key lands on the same partition
//! whichever client wrote it: `partition = (murmur2(key) & 0x7fffffff) % partitions`, with
//! murmur2 as in `org.apache.kafka.common.utils.Utils.murmur2` (seed `0x9747b28c`).

/// Kafka's 32-bit murmur2 hash (`Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's default partitioner picks for a keyed record.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % num_partitions
}

/// Picks the next sticky partition for keyless records: a random partition among those with
/// a leader (all of them when none has one), different from `previous` when there is a choice.
pub(crate) fn next_sticky(previous: Option<i32>, num_partitions: i32, available: &[i32]) -> i32 {
    if num_partitions <= 1 {
        return 0;
    }
    let pick_from = |candidates: &mut dyn Iterator<Item = i32>| -> Option<i32> {
        let list: Vec<i32> = candidates.filter(|p| Some(*p) != previous).collect();
        if list.is_empty() {
            None
        } else {
            Some(list[rand::random_range(0..list.len())])
        }
    };
    if !available.is_empty() {
        if available.len() == 1 {
            return available[0];
        }
        if let Some(p) = pick_from(&mut available.iter().copied()) {
            return p;
        }
    }
    pick_from(&mut (0..num_partitions)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: &[(&str, i32)] = &[
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), *expected, "murmur2({input:?})");
        }
        // Non-ASCII bytes (sign extension in Java's `& 0xff`) and the empty key.
        assert_eq!(murmur2(&[0xff, 0xfe, 0x80]), murmur2(&[0xff, 0xfe, 0x80]));
        let _ = murmur2(&[]);
    }

    #[test]
    fn keyed_partition_is_positive_modulo() {
        // murmur2("21") is negative: the sign bit is masked, not negated.
        let h = murmur2(b"21");
        assert!(h < 0);
        assert_eq!(partition_for_key(b"21", 6), (h & 0x7fffffff) % 6);
        assert_eq!(partition_for_key(b"21", 6), 0);
        assert_eq!(partition_for_key(b"foobar", 1), 0);
        for key in ["a", "b", "user-17", "order-99"] {
            let p = partition_for_key(key.as_bytes(), 12);
            assert!((0..12).contains(&p));
            assert_eq!(p, partition_for_key(key.as_bytes(), 12), "stable");
        }
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
    }

    #[test]
    fn sticky_changes_partition_when_it_can() {
        for _ in 0..100 {
            let p = next_sticky(Some(3), 6, &[]);
            assert!((0..6).contains(&p) && p != 3);
            let p = next_sticky(Some(1), 6, &[1, 4]);
            assert_eq!(p, 4, "only available partitions are picked");
        }
        assert_eq!(next_sticky(Some(0), 1, &[0]), 0);
        assert_eq!(next_sticky(None, 4, &[2]), 2);
    }
}
