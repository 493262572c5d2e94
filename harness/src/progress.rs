//! Progress bars for the sweep and the current run, or nothing at all with `--quiet`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let multi = MultiProgress::new();
        if quiet {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Self { multi, quiet }
    }

    pub fn sweep(&self, runs: usize) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(runs as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "sweep {bar:30.cyan/blue} {pos}/{len} runs  {elapsed_precise}  {msg}",
            )
            .expect("valid template"),
        );
        bar
    }

    pub fn run(&self, name: &str, epochs: usize) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(epochs as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>32} {bar:30.green/white} {pos}/{len} epochs  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(name.to_string());
        bar
    }

    /// A line that stays above the bars (and is printed even when quiet only if `always`).
    pub fn println(&self, line: &str, always: bool) {
        if self.quiet {
            if always {
                eprintln!("{line}");
            }
        } else if self.multi.is_hidden() {
            // Not a terminal (a log file, a test): bars are hidden, lines still matter.
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}
