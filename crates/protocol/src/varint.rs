//! Zig-zag varints as used inside v2 records.

pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, value as i64)
}

pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn varlong_len(value: i64) -> usize {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads a zig-zag varlong from the front of `buf`, advancing it.
pub(crate) fn get_varlong(buf: &mut &[u8]) -> Option<i64> {
    let mut result: u64 = 0;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        if shift == 63 && byte > 1 {
            return None;
        }
        result |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(((result >> 1) as i64) ^ -((result & 1) as i64));
        }
    }
    None
}

pub(crate) fn get_varint(buf: &mut &[u8]) -> Option<i32> {
    i32::try_from(get_varlong(buf)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn round_trips(v in proptest::num::i64::ANY) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            proptest::prop_assert_eq!(out.len(), varlong_len(v));
            let mut slice = &out[..];
            proptest::prop_assert_eq!(get_varlong(&mut slice), Some(v));
            proptest::prop_assert!(slice.is_empty());
        }
    }
}
