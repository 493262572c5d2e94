//! Where a run's computation executes: on the worker threads of a rayon pool of its own, not
//! on the thread that asked for it.
//!
//! Every CPU kernel (burn-flex's and `bench_models::flex_kernels`) spreads its loops over the
//! current rayon pool. Called from a thread outside the pool, each loop is pushed on the pool's
//! shared queue, a worker is woken, and the caller sleeps until it is woken again when the loop
//! ends: two context switches per operation, thousands per training step. Called from one of
//! the pool's workers, the loop's halves go on that worker's own deque and it works on one of
//! them itself. On the tiny-SD benchmark (2-core AMD EPYC, medians of 8 runs) that took a CFG
//! rollout from 0.43 to 0.35 s and a LoRA step from 29 to 22 ms (`tools/bench/tiny_sd_timing.py`).
//!
//! One pool per concurrent job, not one shared pool: a worker waiting for the other half of a
//! parallel loop runs whatever job its pool has queued, so two runs in one pool would nest, the
//! inner one holding the outer one up, and could deadlock where the inner one waits for a
//! network the outer one is loading (`bench_core::cache`). The jobs split the machine's
//! threads (`RAYON_NUM_THREADS` or the cores) between them.

use rayon::{ThreadPool, ThreadPoolBuilder};

/// Stack of each worker: what the main thread gets on Linux, since commands that used to run
/// there now run on a worker.
const STACK_BYTES: usize = 8 << 20;

/// A rayon pool for one of `jobs` concurrent jobs.
pub struct ComputePool(Option<ThreadPool>);

impl ComputePool {
    /// A pool with this job's share of the machine's threads: `threads / jobs`, at least one.
    /// Where the pool cannot be built (no thread could be spawned), work runs on the calling
    /// thread, with rayon's global pool as before: slower, never wrong.
    pub fn for_job(job: usize, jobs: usize) -> Self {
        let threads = (rayon::current_num_threads() / jobs.max(1)).max(1);
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .stack_size(STACK_BYTES)
            .thread_name(move |i| format!("bench-job{job}-{i}"))
            .build();
        Self(pool.ok())
    }

    /// The pool for a command that runs alone (`bench sample`, `score`, `fid`, the timing
    /// examples): all of the machine's threads.
    pub fn whole_machine() -> Self {
        Self::for_job(0, 1)
    }

    /// `work`'s result, computed on one of the pool's workers (the calling thread waits).
    /// `work` must not wait for another thread that uses this pool.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// How many threads the pool's loops are spread over.
    pub fn threads(&self) -> usize {
        self.0
            .as_ref()
            .map_or_else(rayon::current_num_threads, ThreadPool::current_num_threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_the_pools_workers_with_the_jobs_share() {
        let total = rayon::current_num_threads();
        let pool = ComputePool::whole_machine();
        assert_eq!(pool.threads(), total);
        // Inside, rayon's loops see this pool and the caller is one of its workers.
        let (index, seen) =
            pool.run(|| (rayon::current_thread_index(), rayon::current_num_threads()));
        assert!(index.is_some_and(|i| i < total), "{index:?}");
        assert_eq!(seen, total);
        let name = pool.run(|| std::thread::current().name().map(str::to_owned));
        assert!(name.is_some_and(|n| n.starts_with("bench-job0-")));
        // More jobs than threads: one thread each, never none.
        let share = ComputePool::for_job(3, total + 1);
        assert_eq!(share.threads(), 1);
        assert_eq!(share.run(rayon::current_num_threads), 1);
        let sum: u64 = share.run(|| {
            use rayon::prelude::*;
            (1..=1000u64).into_par_iter().sum()
        });
        assert_eq!(sum, 500_500);
    }
}
