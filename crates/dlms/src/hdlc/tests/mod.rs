//! Tests of the HDLC layer: frames, deframing, parameters, Gurux vectors, the link pair.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod frames;
mod gurux;
mod link;
