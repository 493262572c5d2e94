//! glibc's malloc, tuned for tensor programs.
//!
//! Every tensor operation allocates its output. glibc serves blocks above `M_MMAP_THRESHOLD`
//! (128 KiB by default, raised by its dynamic heuristic only as far as freed blocks go) with a
//! fresh `mmap` and returns them with `munmap` on free, and gives the top of each arena back to
//! the kernel past `M_TRIM_THRESHOLD`: so an operation's output, tens of KiB to tens of MiB,
//! is page-faulted and zeroed by the kernel at every step. On the tiny-SD rollout that was a
//! quarter of the time (`perf`: `exc_page_fault`, `clear_page_erms`); PyTorch keeps its own
//! free lists. Keeping blocks up to 32 MiB (glibc's largest accepted threshold) in the arenas,
//! and up to 128 MiB of free memory at their tops, reuses the pages instead; the peak resident
//! memory did not move (57 MiB either way on that benchmark), since the same sizes recur at
//! every denoising step.

/// Sets glibc's mmap and trim thresholds (above) for this process; call it first, before
/// threads start. Returns whether both were accepted; does nothing (and returns false) on
/// other C libraries, whose allocators do not unmap at every free.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 128 << 20;
        // SAFETY: mallopt only sets allocator parameters; glibc serialises it with the arenas.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_thresholds() {
        // glibc rejects an mmap threshold above 32 MiB (HEAP_MAX_SIZE / 2) without a word;
        // this fails if a change asks for more, or if a future glibc narrows the range.
        assert!(super::tune_allocator());
    }
}
