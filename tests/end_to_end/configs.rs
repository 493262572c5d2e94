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

/// SD's `dtype` enters a run's id only when it is not f32: results made before the field
/// existed keep their ids (and resume); a bf16 run is another run.
#[test]
fn sd_dtype_changes_the_run_id_only_when_not_f32() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let text = fs::read_to_string(root.join("sd_tiny.ron")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Fixture paths made absolute: the probes live in a temporary folder.
    let fixtures = root.join("../fixtures").canonicalize().unwrap();
    let text = text.replace("\"../fixtures/", &format!("\"{}/", fixtures.display()));
    let ids = |dtype: &str| -> Vec<String> {
        let file = tmp.path().join("probe.ron");
        let written = text.replace("resolution: 16,", &format!("resolution: 16, {dtype}"));
        assert_ne!(written, text);
        fs::write(&file, written).unwrap();
        let planned =
            plan(&file, tmp.path(), &Plugins::default()).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        planned.runs.into_iter().map(|(id, _)| id).collect()
    };
    let plain = ids(" ");
    assert_eq!(ids("dtype: F32,"), plain);
    let bf16 = ids("dtype: Bf16,");
    assert_eq!(bf16.len(), plain.len());
    assert!(
        bf16.iter().all(|id| !plain.contains(id)),
        "{bf16:?} {plain:?}"
    );
}
