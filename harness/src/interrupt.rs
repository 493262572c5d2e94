//! Ctrl-C (SIGINT) stops a sweep at a safe point: each run finishes its epoch, writes a
//! checkpoint and stops, so that the same command resumes it exactly. A second Ctrl-C stops at
//! once (losing at most the epochs since each run's last checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: stopping now");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: each run stops after its current epoch and writes a checkpoint \
                 (Ctrl-C again to stop at once); rerun the same command to resume"
            );
        });
        if let Err(e) = installed {
            eprintln!("warning: cannot catch Ctrl-C ({e}); a Ctrl-C stops at once");
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
