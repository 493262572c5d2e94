//! What every `bench` plugin kind (objectives, rewards, metrics, environments) shares:
//!
//! - [`SampleKind`]: what an environment's final samples are and what a reward or metric reads,
//!   so that a mismatched pair is refused when a sweep is planned;
//! - [`Registry`]: plugins by name with one-line descriptions;
//! - [`params`]: typed parameters parsed from a sweep file's RON with `file:line:col` errors,
//!   override patches merged in, and the *resolved* text (every default filled in) that run
//!   configurations store and run ids hash;
//! - [`NetworkCache`] and [`BuildContext`]: what factories get to load a network once per
//!   process whatever the number of runs;
//! - [`stats`]: the mean and standard deviations every crate reports.

pub mod cache;
pub mod context;
pub mod files;
pub mod params;
pub mod registry;
pub mod sample_kind;
pub mod source;
pub mod stats;
pub mod validate;

pub use cache::NetworkCache;
pub use context::BuildContext;
pub use files::write_atomic;
pub use params::{Family, FamilyMember, NoParams, Params, ParamsCodec, ParamsText};
pub use registry::Registry;
pub use sample_kind::SampleKind;
pub use source::Source;
pub use validate::{Invalid, Validate};
