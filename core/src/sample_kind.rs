//! What an environment's final samples are.

use std::fmt;

/// The kind of final sample an environment produces and a reward or metric reads. Declared by
/// both sides so that a sweep pairing, say, Stable Diffusion with a 2-D toy reward is refused
/// when it is planned, with the reward's position, instead of failing inside a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// Points of the 2-D toy, carried as tensors `[N, 2, 1, 1]`.
    Points2d,
    /// Images `[N, C, H, W]` with values in [0, 1].
    Images,
    /// Token sequences (prompt environments), read as text.
    Text,
}

impl fmt::Display for SampleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Points2d => "2-D points (toy2d)",
            Self::Images => "images",
            Self::Text => "text",
        })
    }
}
