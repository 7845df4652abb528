//! Tests of the windows, of priority samples, of the compact flow state's
//! memory at the default cap, and the layout it replaced (`reference`),
//! which `detect::flow_equivalence` compares it with: that test scores both
//! with the model, so it lives above the model in the layering.

mod answers;
mod errors;
mod memory;
mod priority;
pub(crate) mod reference;
mod refusals;
mod replies;
mod signature;
mod window;
