//! Exact properties of the objectives on a linear-Gaussian diffusion.
//!
//! One test binary per crate: every binary links all of burn, so separate files would each
//! re-link (and re-monomorphise) it; modules share one link and run in parallel.

mod balance;
mod common;
mod nabla_gfn;
mod objectives;
mod reward_backprop;
