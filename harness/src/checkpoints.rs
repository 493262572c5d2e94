//! A run's checkpoints: each written into a temporary directory, the SHA-256 of every file
//! recorded last in `CHECKSUMS`, then renamed into place, so that a checkpoint is either whole
//! and verifiable or absent. A resume verifies before it loads: a corrupted or partial
//! checkpoint (a flipped byte, a truncated file) is named and skipped for the previous one.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::{write_atomic, RunDir};

/// The file in each checkpoint listing its other files' SHA-256.
pub const CHECKSUMS: &str = "CHECKSUMS";

fn sha256_hex(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Files of a checkpoint directory (it is flat), sorted by name.
fn files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != CHECKSUMS))
        .collect();
    files.sort();
    Ok(files)
}

/// Writes the checkpoint of `epoch` through `save`; on any failure nothing of it remains.
///
/// # Errors
/// `save`'s failure or an I/O failure (a full disk), in words.
pub fn write(
    run: &RunDir,
    epoch: usize,
    save: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    let root = run.checkpoints();
    let final_dir = root.join(name(epoch));
    let tmp = root.join(format!(".tmp-{}-{}", name(epoch), std::process::id()));
    let result = (|| {
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        save(&tmp)?;
        let mut sums = String::new();
        for file in files(&tmp)? {
            let name = file
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .to_string();
            sums.push_str(&format!("{}  {name}\n", sha256_hex(&file)?));
        }
        write_atomic(&tmp.join(CHECKSUMS), sums.as_bytes())?;
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))?;
        }
        fs::rename(&tmp, &final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result.map_err(|e| format!("writing the checkpoint of epoch {epoch}: {e}"))
}

fn name(epoch: usize) -> String {
    format!("epoch-{epoch:06}")
}

/// The run's checkpoints, newest first: `(epochs done, directory)`.
pub fn list(run: &RunDir) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = fs::read_dir(run.checkpoints()) else {
        return vec![];
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let epoch = name.strip_prefix("epoch-")?.parse().ok()?;
            Some((epoch, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

/// Checks every file of a checkpoint against its `CHECKSUMS`.
///
/// # Errors
/// What is wrong, naming the file: no `CHECKSUMS` (a partial checkpoint), a file missing,
/// added or changed.
pub fn verify(dir: &Path) -> Result<(), String> {
    let list = dir.join(CHECKSUMS);
    let text = fs::read_to_string(&list).map_err(|e| {
        format!(
            "{} is missing or unreadable ({e}): a partial checkpoint",
            list.display()
        )
    })?;
    let mut listed = Vec::new();
    for line in text.lines() {
        let (sum, file) = line
            .split_once("  ")
            .ok_or_else(|| format!("{}: malformed line `{line}`", list.display()))?;
        let path = dir.join(file);
        if !path.is_file() {
            return Err(format!("{} is missing", path.display()));
        }
        if sha256_hex(&path)? != sum {
            return Err(format!(
                "{} does not match its checksum (corrupted)",
                path.display()
            ));
        }
        listed.push(path);
    }
    for file in files(dir)? {
        if !listed.contains(&file) {
            return Err(format!("{} is not listed in {CHECKSUMS}", file.display()));
        }
    }
    Ok(())
}

/// Removes all but the newest `keep` checkpoints.
///
/// # Errors
/// A checkpoint that cannot be removed.
pub fn prune(run: &RunDir, keep: usize) -> Result<(), String> {
    for (_, dir) in list(run).into_iter().skip(keep.max(1)) {
        fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    Ok(())
}
