//! Stable run ids: a readable prefix and a hash of the resolved configuration, so that the
//! same run always lands in the same directory and any change gives a new one.

use sha2::{Digest, Sha256};

use crate::run_config::RunConfig;

/// The run's configuration as canonical text (also its `config.ron`): every plugin parameter
/// resolved, so the id changes when a default does.
pub fn canonical(run: &RunConfig) -> String {
    ron::ser::to_string_pretty(run, ron::ser::PrettyConfig::default().struct_names(true))
        .expect("a run configuration always serialises")
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<algorithm label>-<reward label>[-<variant>]-s<seed>-<10 hex digits>`.
pub fn run_id(run: &RunConfig) -> String {
    let hash = Sha256::digest(canonical(run).as_bytes());
    let hex: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let mut parts = vec![
        sanitize(run.algorithm.label()),
        sanitize(run.reward.label()),
    ];
    parts.extend(run.variant.iter().map(|v| sanitize(v)));
    format!("{}-s{}-{hex}", parts.join("-"), run.seed)
}
