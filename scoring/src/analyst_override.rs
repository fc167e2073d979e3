//! An analyst's override of a user's verdicts: a per-user register, written with compare-and-set.
//!
//! While an override is set, every verdict for the user carries its action (allow, challenge or
//! block) whatever the score, with an `analyst_override` reason quoting the analyst's note; the
//! score itself is still computed and reported. Writes are replicated through the user's shard
//! and applied by [`crate::Profile::write_override`]:
//!
//! - `expected: None` writes unconditionally; `expected: Some(v)` writes only if the register
//!   holds `v` (`Some(None)`: only if no override is set), otherwise it changes nothing and the
//!   outcome names what the register holds.
//! - Every write carries a `write_id` chosen by the writer. The profile remembers the last
//!   [`RECENT_WRITES`] applied ids, and a write whose id is among them answers `Applied` again
//!   without re-applying. So a client may retry a write whose first attempt timed out: it takes
//!   effect at most once, and a retried compare-and-set that did succeed is not misreported as a
//!   mismatch.
//!
//! Its serde form is stored (postcard), so fields are never skipped.

use serde::{Deserialize, Serialize};

use crate::detectors::Reason;
use crate::scorer::{Action, Verdict};

/// Longest accepted note and write id, in bytes.
pub const MAX_NOTE_BYTES: usize = 256;
/// Applied write ids a profile remembers for retries.
pub const RECENT_WRITES: usize = 32;

/// The override in force: the action every verdict of the user takes, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub action: Action,
    /// The analyst's words (a ticket, a reason); required, at most [`MAX_NOTE_BYTES`].
    pub note: String,
}

/// One write of the register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideWrite {
    /// Chosen by the writer, unique per write; a retry reuses it.
    pub write_id: String,
    /// The new value; `None` clears the override.
    pub value: Option<Override>,
    /// `Some(v)`: write only if the register holds `v` (compare-and-set).
    pub expected: Option<Option<Override>>,
}

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverrideOutcome {
    /// The register now holds the write's value (or did, when this write id was applied before).
    Applied,
    /// The compare failed: nothing changed; the register holds `current`.
    Mismatch { current: Option<Override> },
}

impl Override {
    /// Checks the fields; the error starts with the offending field's name.
    pub fn validate(&self, field: &str) -> Result<(), String> {
        check_text(&self.note).map_err(|r| format!("{field}.note: {r}"))
    }
}

impl OverrideWrite {
    /// Checks the fields; the error starts with the offending field's name, e.g.
    /// `value.note: must not be empty`.
    pub fn validate(&self) -> Result<(), String> {
        check_text(&self.write_id).map_err(|r| format!("write_id: {r}"))?;
        if let Some(v) = &self.value {
            v.validate("value")?;
        }
        if let Some(Some(e)) = &self.expected {
            e.validate("expected")?;
        }
        Ok(())
    }
}

fn check_text(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_NOTE_BYTES {
        return Err(format!("{} bytes exceeds the limit of {MAX_NOTE_BYTES}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Makes `verdict` follow the override in force (if any): its action, MFA unless allowed, and an
/// `analyst_override` reason of 0 points first in the list.
pub fn apply(verdict: &mut Verdict, o: Option<&Override>) {
    let Some(o) = o else { return };
    verdict.action = o.action;
    verdict.require_mfa = o.action != Action::Allow;
    verdict.reasons.insert(
        0,
        Reason {
            code: "analyst_override".to_owned(),
            points: 0.0,
            evidence: format!("an analyst set this user's action to {}: {}", o.action.as_str(), o.note),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(action: Action, note: &str) -> Override {
        Override { action, note: note.into() }
    }

    #[test]
    fn validation_names_the_field() {
        let w = OverrideWrite { write_id: String::new(), value: None, expected: None };
        assert_eq!(w.validate().unwrap_err(), "write_id: must not be empty");
        let w = OverrideWrite { write_id: "w1".into(), value: Some(ov(Action::Block, "")), expected: None };
        assert_eq!(w.validate().unwrap_err(), "value.note: must not be empty");
        let long = "x".repeat(MAX_NOTE_BYTES + 1);
        let w = OverrideWrite { write_id: "w1".into(), value: None, expected: Some(Some(ov(Action::Allow, &long))) };
        assert!(w.validate().unwrap_err().starts_with("expected.note: 257 bytes"));
        let w = OverrideWrite { write_id: "w1".into(), value: Some(ov(Action::Allow, "a\nb")), expected: None };
        assert_eq!(w.validate().unwrap_err(), "value.note: must not contain control characters");
        let ok = OverrideWrite { write_id: "w1".into(), value: Some(ov(Action::Block, "INC-1")), expected: Some(None) };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn an_override_sets_the_action_and_explains_it() {
        let mut v = Verdict {
            score: 97,
            action: Action::Block,
            require_mfa: true,
            reasons: vec![Reason { code: "new_country".into(), points: 30.0, evidence: String::new() }],
            model_version: "rules-only".into(),
        };
        apply(&mut v, None);
        assert_eq!(v.action, Action::Block);
        apply(&mut v, Some(&ov(Action::Allow, "travelling, INC-7")));
        assert_eq!((v.score, v.action, v.require_mfa), (97, Action::Allow, false));
        assert_eq!(v.reasons[0].code, "analyst_override");
        assert!(v.reasons[0].evidence.contains("allow: travelling, INC-7"), "{}", v.reasons[0].evidence);
        assert_eq!(v.reasons.len(), 2);
    }
}

#[cfg(test)]
mod register_tests {
    use super::*;
    use crate::Profile;

    fn set(id: &str, note: Option<&str>, expected: Option<Option<&str>>) -> OverrideWrite {
        let ov = |n: &str| Override { action: Action::Block, note: n.into() };
        OverrideWrite { write_id: id.into(), value: note.map(ov), expected: expected.map(|e| e.map(ov)) }
    }

    fn note(p: &Profile) -> Option<&str> {
        p.analyst_override.as_ref().map(|o| o.note.as_str())
    }

    #[test]
    fn compare_and_set_writes_only_on_a_match() {
        let mut p = Profile::new("alice");
        assert_eq!(p.write_override(&set("w1", Some("a"), Some(None))), OverrideOutcome::Applied);
        assert_eq!(note(&p), Some("a"));
        let miss = p.write_override(&set("w2", Some("b"), Some(None)));
        assert_eq!(miss, OverrideOutcome::Mismatch { current: p.analyst_override.clone() });
        assert_eq!(note(&p), Some("a"));
        assert_eq!(p.write_override(&set("w3", Some("b"), Some(Some("a")))), OverrideOutcome::Applied);
        assert_eq!(p.write_override(&set("w4", None, None)), OverrideOutcome::Applied);
        assert_eq!(note(&p), None);
        assert_eq!(p.events_applied, 0, "an override is not an event");
    }

    #[test]
    fn a_retried_write_applies_once() {
        let mut p = Profile::new("alice");
        assert_eq!(p.write_override(&set("w1", Some("a"), Some(None))), OverrideOutcome::Applied);
        assert_eq!(p.write_override(&set("w2", Some("b"), None)), OverrideOutcome::Applied);
        // The retry of w1 (its first answer was lost): reported applied, and "b" stays.
        assert_eq!(p.write_override(&set("w1", Some("a"), Some(None))), OverrideOutcome::Applied);
        assert_eq!(note(&p), Some("b"));
        // Only the last RECENT_WRITES ids are remembered.
        for i in 0..RECENT_WRITES {
            p.write_override(&set(&format!("x{i}"), Some("c"), None));
        }
        assert_eq!(p.override_writes.len(), RECENT_WRITES);
        assert!(!p.override_writes.contains(&"w1".to_string()));
        assert_eq!(p.write_override(&set("w1", Some("a"), None)), OverrideOutcome::Applied);
        assert_eq!(note(&p), Some("a"), "a forgotten id is a new write");
    }
}
