//! Ground truth for evaluation: which events are malicious, and in which scenario.
//!
//! The labels file of `traceo generate` / `traceo eval` is JSON lines, one object per event:
//!
//! ```json
//! {"event_id":"65-0000001234","label":1,"scenario":"account_takeover"}
//! ```
//!
//! `label` is 1 for malicious and 0 for benign; `scenario` names the attack, or the benign
//! look-alike the event belongs to (`benign_travel`, `benign_new_device`, …), or `normal`. Events
//! of the events file that have no line in the labels file count as benign `normal` events, so a
//! converted real log needs lines only for its known-bad events.

use serde::{Deserialize, Serialize};

/// Ordinary benign behaviour.
pub const NORMAL: &str = "normal";
/// A business trip: new country, ASN and guest networks, long but possible flights.
pub const BENIGN_TRAVEL: &str = "benign_travel";
/// The first sessions on a new device (a new phone, a second laptop).
pub const BENIGN_NEW_DEVICE: &str = "benign_new_device";
/// A session through the user's VPN (a data-centre ASN, maybe another country).
pub const BENIGN_VPN: &str = "benign_vpn";
/// An on-call night session.
pub const BENIGN_ON_CALL: &str = "benign_on_call";
/// Finance's month-end close: more sessions and 4–10× the usual data volumes.
pub const BENIGN_MONTH_END: &str = "benign_month_end";
/// The first days back after weeks of leave.
pub const BENIGN_RETURN_FROM_LEAVE: &str = "benign_return_from_leave";

/// Every benign look-alike scenario (not [`NORMAL`]).
pub const BENIGN_LOOKALIKES: [&str; 6] =
    [BENIGN_TRAVEL, BENIGN_NEW_DEVICE, BENIGN_VPN, BENIGN_ON_CALL, BENIGN_MONTH_END, BENIGN_RETURN_FROM_LEAVE];

pub const ACCOUNT_TAKEOVER: &str = "account_takeover";
pub const IMPOSSIBLE_TRAVEL: &str = "impossible_travel";
pub const CREDENTIAL_STUFFING: &str = "credential_stuffing";
pub const PASSWORD_SPRAY: &str = "password_spray";
pub const BRUTE_FORCE: &str = "brute_force";
pub const INSIDER_EXFILTRATION: &str = "insider_exfiltration";
pub const DORMANT_ACCOUNT: &str = "dormant_account";
pub const PRIVILEGE_ESCALATION: &str = "privilege_escalation";

/// Every attack scenario the generator injects.
pub const ATTACKS: [&str; 8] = [
    ACCOUNT_TAKEOVER,
    IMPOSSIBLE_TRAVEL,
    CREDENTIAL_STUFFING,
    PASSWORD_SPRAY,
    BRUTE_FORCE,
    INSIDER_EXFILTRATION,
    DORMANT_ACCOUNT,
    PRIVILEGE_ESCALATION,
];

/// True if `scenario` is one of the generator's attacks.
pub fn is_attack(scenario: &str) -> bool {
    ATTACKS.contains(&scenario)
}

/// One line of a labels file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRecord {
    pub event_id: String,
    /// 1 = malicious, 0 = benign.
    pub label: u8,
    pub scenario: String,
}

impl LabelRecord {
    pub fn malicious(&self) -> bool {
        self.label == 1
    }
}
