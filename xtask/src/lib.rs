//! PhantomNet's developer tasks. The library part (the lab, prerequisites,
//! command helpers) is shared with the root-only end-to-end tests.
pub mod bench;
pub mod cmd;
pub mod dataset;
pub mod demo;
pub mod install;
pub mod lab;
pub mod prereq;
pub mod privilege;
pub mod traffic;
pub mod tte;
