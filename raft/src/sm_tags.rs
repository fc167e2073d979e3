//! The tags of a group's state-machine metadata rows (column family `SmMeta`, keyed by group id
//! then tag), shared by the state machine that writes them and the snapshots that carry them.
//! Stored on disk: a tag is never reused for something else.

/// The last applied log id.
pub(crate) const TAG_APPLIED: u8 = 1;
/// The last applied membership.
pub(crate) const TAG_MEMBERSHIP: u8 = 2;
/// The meta group's state.
pub(crate) const TAG_META_STATE: u8 = 3;
/// Followed by the version: a deployed model bundle (meta group).
pub(crate) const TAG_MODEL: u8 = 4;
