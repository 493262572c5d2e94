//! Parity of the SD components with transformers/diffusers on the committed fixtures.
//!
//! One test binary per crate: every binary links all of burn, so separate files would each
//! re-link (and re-monomorphise) it; modules share one link and run in parallel.

mod autodiff;
mod bert;
mod blip;
mod checkpointing;
mod clip;
mod common;
mod dreamsim;
mod inception;
mod layouts;
mod lora;
mod real_keys;
mod reward_nets;
mod unet;
mod vae;
mod weights;
