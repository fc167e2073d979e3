//! Analysts' feedback about a user: verdicts on events and trusted devices and countries.
//!
//! Feedback is replicated through the user's shard like events and folded into the profile by
//! [`crate::Profile::apply_feedback`]; [`crate::features::Observation::observe`] and the rule
//! detectors honour it. Its serde form is stored (postcard), so fields are never skipped.

use serde::{Deserialize, Serialize};

/// Longest accepted `event_id` / `device_id`, in bytes.
pub const MAX_FEEDBACK_ID_BYTES: usize = 128;

/// An analyst's word about one user, replicated through the user's shard and folded into the profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feedback {
    /// Verdict on an event of this user. `at_ms`: when the analyst said it (set by the node that accepted it).
    MarkEvent { event_id: String, malicious: bool, at_ms: i64 },
    /// This device is the user's: never "new".
    TrustDevice { device_id: String },
    /// The user may be in this country (ISO 3166 alpha-2, upper case): never "new".
    TrustCountry { country: String },
}

impl Feedback {
    /// Checks the fields; the error starts with the offending field's name, e.g.
    /// `device_id: must not be empty`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Feedback::MarkEvent { event_id, at_ms, .. } => {
                check_id(event_id).map_err(|r| format!("event_id: {r}"))?;
                if *at_ms <= 0 {
                    return Err(format!("at_ms: {at_ms} is not a positive time"));
                }
                Ok(())
            }
            Feedback::TrustDevice { device_id } => check_id(device_id).map_err(|r| format!("device_id: {r}")),
            Feedback::TrustCountry { country } => {
                if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
                    Ok(())
                } else {
                    let shown: String = country.chars().take(16).collect();
                    Err(format!("country: {shown:?} is not an ISO 3166-1 alpha-2 code (two upper-case letters)"))
                }
            }
        }
    }
}

fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_FEEDBACK_ID_BYTES {
        return Err(format!("{} bytes exceeds the limit of {MAX_FEEDBACK_ID_BYTES}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "feedback_tests.rs"]
mod tests;
