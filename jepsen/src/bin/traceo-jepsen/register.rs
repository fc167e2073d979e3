//! The register workload: each key is a user's analyst override (`SetOverride`), written with a
//! unique note, or compare-and-set from the value the worker last saw, and read with a
//! linearizable `GetProfile` (sent to the worker's own node, following leader redirects, like
//! list-append reads). Checked by the Wing–Gong–Lowe search of [`jepsen::linearizable`].
//!
//! In the history a register value is the override as text, `"<action>:<note>"` (for example
//! `"block:r7-w3-12"`), and `null` when none is set; a cas carries `[expected, new]`.

use client::proto::{Action, AnalystOverride, Profile};
use client::{Client, ClientError};
use jepsen::history::{OpF, OpType};
use serde_json::Value;

use crate::recorder::Recorder;

/// Writes (and cas) a register key takes before it retires: with ten workers and some
/// indeterminate writes, the per-key search stays far below a second.
pub const WRITES_PER_KEY: u32 = 40;

fn text(o: &AnalystOverride) -> Value {
    let action = Action::try_from(o.action).map_or("?".to_owned(), |a| a.as_str_name().to_lowercase());
    Value::String(format!("{action}:{}", o.note))
}

/// The register value in a profile.
pub fn view(p: Option<Profile>) -> Value {
    p.and_then(|p| p.analyst_override).as_ref().map_or(Value::Null, text)
}

/// The override a history value stands for (`None` for null).
fn parse(v: &Value) -> Option<AnalystOverride> {
    let (action, note) = v.as_str()?.split_once(':')?;
    let action = Action::from_str_name(&action.to_uppercase())?;
    Some(AnalystOverride { action: action as i32, note: note.to_owned() })
}

/// One write of the override `id` (its action picked from the id), a compare-and-set when
/// `expected` is given. Returns the register value this worker now knows (the new one when
/// written, the current one when the compare failed) and whether the outcome is unknown.
pub async fn write_op(
    client: &Client,
    rec: &Recorder,
    process: i64,
    key: &str,
    id: &str,
    expected: Option<Value>,
) -> (Option<Value>, bool) {
    let actions = [Action::Allow, Action::Challenge, Action::Block];
    let new =
        AnalystOverride { action: actions[id.bytes().map(usize::from).sum::<usize>() % 3] as i32, note: id.to_owned() };
    let new_v = text(&new);
    let (f, v) = match &expected {
        Some(e) => (OpF::Cas, serde_json::json!([e, new_v])),
        None => (OpF::Write, new_v.clone()),
    };
    rec.record(process, OpType::Invoke, f, key, v.clone(), "");
    let (kind, seen, unknown) = match client.set_override(key, Some(new), expected.as_ref().map(parse)).await {
        Ok(r) if r.applied => (OpType::Ok, Some(new_v), false),
        Ok(r) => (OpType::Fail, Some(r.current.as_ref().map_or(Value::Null, text)), false),
        Err(ClientError::InvalidArgument(_)) | Err(ClientError::Rejected(_)) => (OpType::Fail, None, false),
        Err(_) => (OpType::Info, None, true),
    };
    rec.record(process, kind, f, key, v, "");
    (seen, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_their_text() {
        let o = AnalystOverride { action: Action::Challenge as i32, note: "r1-w2-3".into() };
        assert_eq!(text(&o), Value::String("challenge:r1-w2-3".into()));
        assert_eq!(parse(&text(&o)), Some(o));
        assert_eq!(parse(&Value::Null), None);
        assert_eq!(view(None), Value::Null);
    }
}
