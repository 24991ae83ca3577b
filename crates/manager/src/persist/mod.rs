//! The manager's own persistence: the key registry and the operation log, two redb files in
//! its data directory (the nodes' encrypted store is `cohort-store`, not used here).

pub mod oplog;
pub mod registry;
