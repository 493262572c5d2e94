//! Splitting a sweep's runs between machines: `bench run SWEEP --shard I/N` runs the I-th of N
//! disjoint parts (I from 0), and a Slurm array task finds its part in
//! `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_COUNT`.
//!
//! Runs are assigned by their ids, not by their place in the sweep file: the ids sorted, the
//! k-th goes to shard `k mod N`. Every run lands in exactly one shard, the parts differ in size
//! by at most one run, and reordering the sweep file (or rerunning, or resuming) moves nothing.
//! Adding or removing runs can move others to another shard; with a shared results directory
//! that is harmless — a run found finished is skipped, an interrupted one resumes wherever it
//! lands, and the lock file keeps two shards from training one run at once.

use std::fmt;
use std::str::FromStr;

/// One part of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// # Errors
    /// A count of 0 or an index not below it, in words for the user.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 {
            return Err("a sweep splits into at least 1 shard".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count}: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard of a Slurm array task, from its environment (`var` reads a variable), if the
    /// process is one: index `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` (0 when no minimum
    /// is set), count `SLURM_ARRAY_TASK_COUNT`.
    ///
    /// # Errors
    /// Variables that are set but are not numbers, or an index out of range.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|e| format!("{name}={v:?}: {e}"))
                })
                .transpose()
        };
        let (Some(id), Some(count)) = (
            number("SLURM_ARRAY_TASK_ID")?,
            number("SLURM_ARRAY_TASK_COUNT")?,
        ) else {
            return Ok(None);
        };
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(min).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
        })?;
        Self::new(index, count)
            .map(Some)
            .map_err(|e| format!("the Slurm array task: {e}"))
    }

    /// The ids among `ids` that belong to this shard, in their given order.
    pub fn select<'a>(&self, ids: &[&'a str]) -> Vec<&'a str> {
        let mut sorted: Vec<&str> = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mine: std::collections::HashSet<&str> = sorted
            .iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index)
            .map(|(_, id)| *id)
            .collect();
        ids.iter().copied().filter(|id| mine.contains(id)).collect()
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: write the shard as I/N, e.g. 0/4"))?;
        let parse = |v: &str, what: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|e| format!("`{s}`: the {what} `{v}`: {e}"))
        };
        Self::new(parse(i, "index")?, parse(n, "count")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        // Ids in an order unrelated to their sorted one.
        (0..n)
            .map(|k| format!("run-{:03}", (k * 37) % 101))
            .collect()
    }

    #[test]
    fn every_run_is_in_exactly_one_shard_and_shards_are_balanced() {
        let owned = ids(23);
        let all: Vec<&str> = owned.iter().map(String::as_str).collect();
        for count in 1..=7 {
            let mut seen: Vec<&str> = Vec::new();
            let mut sizes = Vec::new();
            for index in 0..count {
                let part = Shard::new(index, count).unwrap().select(&all);
                sizes.push(part.len());
                seen.extend(part);
            }
            seen.sort_unstable();
            let mut want = all.clone();
            want.sort_unstable();
            assert_eq!(seen, want, "{count} shards");
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{count} shards: {sizes:?}");
        }
    }

    #[test]
    fn reordering_the_sweep_moves_no_run() {
        let owned = ids(17);
        let all: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut reversed = all.clone();
        reversed.reverse();
        for index in 0..3 {
            let shard = Shard::new(index, 3).unwrap();
            let mut a = shard.select(&all);
            let mut b = shard.select(&reversed);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn shards_parse_from_the_command_line_and_from_slurm() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().unwrap_err().contains("0 to 3"));
        assert!("1".parse::<Shard>().unwrap_err().contains("I/N"));
        assert!("a/2".parse::<Shard>().unwrap_err().contains("index"));
        assert!("0/0".parse::<Shard>().is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        let task = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_slurm(task),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(Shard::from_slurm(bad)
            .unwrap_err()
            .contains("SLURM_ARRAY_TASK_ID"));
    }
}
