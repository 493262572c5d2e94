//! The results directory of one run and how it is written: every file atomically
//! (temporary file + rename), a lock file so that two processes never share a run, and
//! checkpoints as directories renamed into place once complete.
//!
//! ```text
//! <results>/<sweep>/<run-id>/
//!     config.ron            the resolved run configuration
//!     metrics.csv           one row per epoch: training scalars
//!     eval.csv              epoch,metric,value at each evaluation
//!     checkpoints/epoch-000010/   trainable weights (safetensors), optimizer states
//!     samples/epoch-000010.csv    the samples of each evaluation (epoch 0: the base model)
//!     metrics/<metric>/     what a metric keeps across evaluations
//!     DONE                  completion marker with the final evaluation
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

    fn checkpoints(&self) -> PathBuf {
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

    /// The latest complete checkpoint: `(epochs done, directory)`.
    pub fn latest_checkpoint(&self) -> Option<(usize, PathBuf)> {
        let entries = fs::read_dir(self.checkpoints()).ok()?;
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let epoch = name.strip_prefix("epoch-")?.parse().ok()?;
                Some((epoch, e.path()))
            })
            .max_by_key(|(epoch, _)| *epoch)
    }

    /// Writes a checkpoint through `save` into a temporary directory and renames it into
    /// place, so that a crash leaves either the whole checkpoint or none.
    ///
    /// # Errors
    /// An I/O failure or the failure of `save`.
    pub fn write_checkpoint(
        &self,
        epoch: usize,
        save: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), String> {
        let final_dir = self.checkpoints().join(format!("epoch-{epoch:06}"));
        let tmp = self
            .checkpoints()
            .join(format!(".tmp-epoch-{epoch:06}-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        save(&tmp)?;
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))?;
        }
        fs::rename(&tmp, &final_dir).map_err(|e| format!("{}: {e}", final_dir.display()))
    }
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
