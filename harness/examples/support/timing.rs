//! What the timing examples share: one warm-up, then the wall time of each repetition.

use std::time::Instant;

/// Milliseconds of each of `reps` calls of `f`, after one uncounted call (kernel compilation,
/// first allocations). `f` must end by reading a value back, so that a GPU has finished.
pub fn repeat_ms(reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    f();
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}
