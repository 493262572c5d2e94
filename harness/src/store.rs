//! The results directory of one run and how it is written: every file atomically
//! (temporary file + rename), a lock file so that two processes never share a run, and
//! checkpoints as directories renamed into place once complete.
//!
//! ```text
//! <results>/<sweep>/<run-id>/
//!     config.ron            the resolved run configuration
//!     metrics.csv           one row per epoch: training scalars
//!     eval.csv              epoch,metric,value at each evaluation
//!     checkpoints/epoch-000010/   trainable weights (safetensors), optimizer states and
//!                           CHECKSUMS (SHA-256 of every file, written last)
//!     samples/epoch-000010.csv    the samples of each evaluation (epoch 0: the base model)
//!     metrics/<metric>/     what a metric keeps across evaluations
//!     DONE                  completion marker with the final evaluation
//!     DIVERGED              marker of a run stopped by a non-finite quantity (epoch, what)
//!     .lock                 held while a process works on the run
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use fs2::FileExt;

pub use bench_core::write_atomic;

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

/// An exclusive lock on a run, released when dropped or when the process dies.
pub struct RunLock {
    _file: File,
}

impl RunDir {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.ron")
    }

    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.csv")
    }

    pub fn eval(&self) -> PathBuf {
        self.path.join("eval.csv")
    }

    pub fn done_marker(&self) -> PathBuf {
        self.path.join("DONE")
    }

    pub fn is_done(&self) -> bool {
        self.done_marker().exists()
    }

    /// Marker of a run stopped because a quantity became non-finite (see [`crate::divergence`]).
    pub fn diverged_marker(&self) -> PathBuf {
        self.path.join("DIVERGED")
    }

    pub fn is_diverged(&self) -> bool {
        self.diverged_marker().exists()
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// Takes the run's lock, or `None` if another process holds it.
    ///
    /// # Errors
    /// An I/O failure creating the directory or lock file.
    pub fn try_lock(&self) -> Result<Option<RunLock>, String> {
        fs::create_dir_all(&self.path)
            .map_err(|e| format!("creating {}: {e}", self.path.display()))?;
        let path = self.path.join(".lock");
        let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(Some(RunLock { _file: file })),
            Err(_) => Ok(None),
        }
    }

    /// Removes what a killed or failed process left half-written in the run (temporary files
    /// and checkpoint directories). Call it holding the run's lock: no one else writes here.
    ///
    /// # Errors
    /// A temporary that cannot be removed.
    pub fn remove_temporaries(&self) -> Result<usize, String> {
        remove_temporaries(&self.path)
    }
}

/// Whether a file or directory name is one of our temporaries (`.<name>.tmp-<pid>` files,
/// `.tmp-epoch-…` checkpoint directories).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-") || name.starts_with(".tmp-")
}

fn remove_temporaries(dir: &Path) -> Result<usize, String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_temporary(&name) {
            if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
            .map_err(|e| format!("removing the leftover {}: {e}", path.display()))?;
            removed += 1;
        } else if is_dir {
            removed += remove_temporaries(&path)?;
        }
    }
    Ok(removed)
}

/// A table of rows `epoch, values…` kept in memory and rewritten atomically.
#[derive(Clone, Debug, Default)]
pub struct CsvLog {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl CsvLog {
    /// Reads a log, keeping only rows whose first column (the epoch) is below `before`.
    pub fn read_before(path: &Path, before: usize) -> Self {
        let Ok(mut reader) = csv::Reader::from_path(path) else {
            return Self::default();
        };
        let header = reader
            .headers()
            .map(|h| h.iter().map(str::to_string).collect())
            .unwrap_or_default();
        let rows = reader
            .records()
            .filter_map(Result::ok)
            .map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())
            .filter(|r| {
                r.first()
                    .and_then(|e| e.parse::<usize>().ok())
                    .is_some_and(|e| e < before)
            })
            .collect();
        Self { header, rows }
    }

    /// # Errors
    /// An I/O failure.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header).map_err(|e| e.to_string())?;
        for r in &self.rows {
            w.write_record(r).map_err(|e| e.to_string())?;
        }
        let bytes = w.into_inner().map_err(|e| e.to_string())?;
        write_atomic(path, &bytes)
    }
}
