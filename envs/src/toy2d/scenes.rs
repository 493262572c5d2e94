//! The named mixtures the toy's prompts refer to.

use bench_models::GaussianMixture;

/// Known scene names and what they are.
pub const SCENES: &[(&str, &str)] = &[
    (
        "ring8",
        "8 equal Gaussians (std 0.1) on a circle of radius 1",
    ),
    (
        "grid9",
        "a 3×3 grid of equal Gaussians (std 0.1), spacing 0.8",
    ),
    (
        "broad1",
        "one Gaussian (std 0.6) at the origin: broader than the toy rewards' targets, a base \
         from which detailed balance can reach them",
    ),
    (
        "ring8_wide",
        "ring8 with modes of std 0.3: multi-modal, yet as broad as the mixture reward's peaks",
    ),
];

/// The mixture a scene name stands for.
///
/// # Errors
/// An unknown name; the message lists the known ones.
pub fn scene(name: &str) -> Result<GaussianMixture, String> {
    match name {
        "ring8" => Ok(GaussianMixture::ring(8, 1.0, 0.1)),
        "grid9" => Ok(GaussianMixture::grid(3, 0.8, 0.1)),
        "broad1" => Ok(GaussianMixture::ring(1, 0.0, 0.6)),
        "ring8_wide" => Ok(GaussianMixture::ring(8, 1.0, 0.3)),
        _ => Err(format!(
            "unknown toy2d scene `{name}`; known scenes: {}",
            SCENES.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        )),
    }
}
