//! What the end-to-end tests share: the `bench` binary and the committed fixtures.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A file or folder under the repository's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// A `bench` command, for tests that spawn and control the process.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench"))
}

/// Runs `bench` with `args` to completion.
pub fn bench<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command().args(args).output().unwrap()
}

/// Runs `bench` with `args`, failing the test with bench's stderr if it does not succeed.
pub fn bench_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = bench(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
