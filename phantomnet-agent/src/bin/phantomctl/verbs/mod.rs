//! One file per verb (or per family of verbs that share a reply).
pub(crate) mod add;
pub(crate) mod events;
pub(crate) mod known_good;
pub(crate) mod mode;
pub(crate) mod model;
pub(crate) mod remove;
pub(crate) mod rules;
pub(crate) mod signature;
pub(crate) mod status;
pub(crate) mod thresholds;
