//! The artifact contract between the launcher, the workers and the readers of results: the typed
//! keys of the three identities ([`keys`]), the stage each owns, and where every artifact lives in
//! the store ([`layout`]), and each parquet table's row type and Arrow schema ([`tables`]). Writers and readers use these, never string literals.

pub mod keys;
pub mod layout;
pub mod tables;

pub use keys::{BadKey, JudgmentKey, Stage, StageRef, UnitKey, VariantKey};
