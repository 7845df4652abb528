//! Tests of the compact flow state against the layout it replaced, and of
//! its memory at the default cap.

mod equivalence;
mod memory;
mod reference;
