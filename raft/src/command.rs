//! What the Raft log carries: the commands applied by the state machines, and their results.

use serde::{Deserialize, Serialize};

use crate::member::{NodeId, NodeInfo, NodeState};
use crate::model_registry::ModelCommand;

/// One Raft entry's payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// A shard's part of an ingest batch, validated before it was proposed.
    Ingest(Vec<scoring::Event>),
    /// A change to the meta group's state.
    Meta(MetaCommand),
    /// An analyst's feedback about a user of this shard, folded into the profile (created if the
    /// user has no events yet, so a device can be trusted before first use).
    Feedback { user_id: String, feedback: scoring::Feedback },
    /// A write of a user's override register (compare-and-set, idempotent by write id).
    SetOverride { user_id: String, write: scoring::OverrideWrite },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Fixes the cluster's identity and shape. Applied once; later attempts are rejected.
    InitCluster { cluster_id: String, shards: u32, replication_factor: u32 },
    /// Registers a node (or updates its addresses and labels); the result carries its id.
    /// `id: None` allocates the next id; the founding node asks for its own (1).
    AddNode { id: Option<NodeId>, info: NodeInfo },
    /// Replaces the placement if `expected_epoch` is still the current one.
    SetPlacement { expected_epoch: u64, replicas: Vec<Vec<NodeId>> },
    /// Deploys, promotes, clears or rolls back scoring models ([`crate::model_registry`]).
    Models(ModelCommand),
    /// Changes a node's standing (decommission, declared dead, back alive, removed).
    SetNodeState { id: NodeId, state: NodeState },
    /// A shard leader reports its group's committed voters, from the membership entry at
    /// `log_index`; older reports than the one recorded are ignored.
    ReportMembers { shard: u32, voters: Vec<NodeId>, log_index: u64 },
}

/// Per event of an ingest command, in the command's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    /// Folded into the profile by this command; what the event looked like against the profile
    /// just before it (the scoring features and the rules' evidence).
    New(Box<scoring::features::Observation>),
    /// Its `event_id` had been applied before: nothing changed.
    Duplicate,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Blank and membership entries.
    #[default]
    None,
    Ingest(Vec<Applied>),
    NodeAdded {
        id: NodeId,
    },
    PlacementSet {
        epoch: u64,
    },
    /// The model slots after a model command (`live: None` = built-in models).
    ModelsSet {
        live: Option<String>,
        shadow: Option<String>,
    },
    /// Feedback folded into the user's profile.
    FeedbackApplied,
    /// What an override write did.
    Override(scoring::OverrideOutcome),
    /// A node state change or a members report was recorded.
    Recorded,
    /// A meta command that was applied as a no-op, with the reason.
    Rejected(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// postcard is not self-describing: a stored type with `skip_serializing_if` would decode
    /// wrongly. Round-trip a full and a sparse event through the log's encoding.
    #[test]
    fn ingest_commands_round_trip_through_the_log_encoding() {
        let mut g = sim::Generator::new(sim::GeneratorConfig { seed: 3, users: 20, ..Default::default() });
        let mut events: Vec<scoring::Event> = (0..500).map(|_| g.next_event()).collect();
        events.push(scoring::Event::new(
            "sparse",
            "u",
            1_790_000_000_000,
            scoring::EventKind::Logout,
            scoring::Outcome::Success,
        ));
        let bytes = storage::encode(&Command::Ingest(events.clone()));
        match storage::decode::<Command>(&bytes).unwrap() {
            Command::Ingest(back) => assert_eq!(back, events),
            other => panic!("decoded {other:?}"),
        }
    }
}
