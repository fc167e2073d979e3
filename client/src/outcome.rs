//! What the client reports for each event it was asked to ingest.

/// The fate of one event after the client's retries.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Committed and applied. `duplicate`: it had been applied before (by an earlier attempt or
    /// an earlier call with the same id), so this call changed nothing. `verdict`: the event's
    /// score, reasons and action (a new event only).
    Ok { duplicate: bool, verdict: Option<crate::proto::Verdict> },
    /// Definitely not applied (every attempt was refused before it could be proposed).
    Failed { reason: String },
    /// May or may not have been applied: some attempt's fate is unknown. Retrying with the same
    /// `event_id` is safe and will settle it.
    Indeterminate { reason: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok { .. })
    }
}
