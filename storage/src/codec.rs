//! Versioned binary encoding of stored values: one format-version byte, then postcard.
//!
//! postcard was chosen over bincode: bincode 3 on crates.io is a tombstone and 1.x/2.x are marked
//! unmaintained (RUSTSEC-2025-0141), while postcard 1.x documents a stable wire format and works
//! with openraft's serde types. The leading byte lets a later format be read beside this one.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format written today. Readers accept exactly the versions they know.
pub const FORMAT_VERSION: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value: no format version byte")]
    Empty,
    #[error("unknown format version {0} (this build reads version {FORMAT_VERSION})")]
    UnknownVersion(u8),
    #[error("corrupt value: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// Encodes `value` as `[FORMAT_VERSION] ++ postcard(value)`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serializing our own in-memory types into a Vec cannot fail: postcard only errors on
    // unsupported serde features (e.g. `serialize_any`), which no stored type uses.
    postcard::to_io(value, &mut out).expect("postcard encoding of a stored type");
    out
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::UnknownVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        a: u64,
        b: String,
        c: Option<Vec<i32>>,
    }

    #[test]
    fn round_trips_with_version_byte() {
        let s = Sample { a: 7, b: "x".into(), c: Some(vec![-1, 2]) };
        let bytes = encode(&s);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        let mut bytes = encode(&5u64);
        bytes[0] = 9;
        assert!(matches!(decode::<u64>(&bytes), Err(CodecError::UnknownVersion(9))));
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
        assert!(matches!(decode::<Sample>(&[FORMAT_VERSION, 0xff]), Err(CodecError::Corrupt(_))));
    }
}
