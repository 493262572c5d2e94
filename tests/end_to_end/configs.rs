//! Every sweep shipped in `configs/` parses and validates (algorithms, rewards, parameters,
//! environments and their model folders) the way `bench run` does before it writes anything.

use std::fs;
use std::path::Path;

use bench::plan::plan;
use bench::Plugins;

#[test]
fn every_shipped_config_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in fs::read_dir(root.join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ron") {
            continue;
        }
        // Model folders are relative to the sweep file, as a sweep means them.
        let planned = plan(&path, tmp.path(), &Plugins::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!planned.runs.is_empty(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} configs found");
}
