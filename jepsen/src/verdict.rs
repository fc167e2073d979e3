//! The verdict every checker gives: valid, invalid (with the evidence in the checker's result), or
//! unknown (the checker could not decide, e.g. it ran out of time or an operation was never
//! confirmed). A checker never says valid without having proved it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// The verdict of a whole made of two parts: invalid if either part is (an anomaly found
    /// anywhere stands), otherwise unknown if either part is, otherwise valid.
    pub fn and(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }

    /// [`Validity::and`] over all parts; valid when there are none.
    pub fn all(parts: impl IntoIterator<Item = Validity>) -> Validity {
        parts.into_iter().fold(Validity::Valid, Validity::and)
    }
}

#[cfg(test)]
mod tests {
    use super::Validity::{self, *};

    #[test]
    fn invalid_dominates_unknown_dominates_valid() {
        assert_eq!(Validity::all([]), Valid);
        assert_eq!(Validity::all([Valid, Valid]), Valid);
        assert_eq!(Validity::all([Valid, Unknown, Valid]), Unknown);
        assert_eq!(Validity::all([Unknown, Invalid, Valid]), Invalid);
        assert_eq!(serde_json::to_string(&Unknown).unwrap(), r#""unknown""#);
    }
}
