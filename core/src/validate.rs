//! Ranges of parameters, checked when a sweep is planned: a value out of range is refused at
//! its position in the sweep file instead of failing (or silently misbehaving) in a run.

use std::fmt;

/// A field whose value is out of range.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    /// The field, as written in the sweep (`lr`, or `optim.lr` for a nested one).
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The same error under an enclosing field (`optim` + `lr` → `optim.lr`).
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            message: self.message,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

/// What a parameter type checks of its values (nothing by default).
pub trait Validate {
    /// # Errors
    /// The first field out of range.
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

impl Validate for () {}

/// `value` is finite and > 0.
pub fn positive(field: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("= {value} must be positive and finite"),
        ))
    }
}

/// `value` is finite and ≥ 0.
pub fn non_negative(field: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("= {value} must be finite and ≥ 0"),
        ))
    }
}

/// `value` is finite.
pub fn finite(field: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Invalid::new(field, format!("= {value} must be finite")))
    }
}

/// `lo ≤ value ≤ hi` (finite).
pub fn within(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), Invalid> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("= {value} must be in [{lo}, {hi}]"),
        ))
    }
}

/// A count ≥ `min`.
pub fn at_least(field: &str, value: usize, min: usize) -> Result<(), Invalid> {
    if value >= min {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("= {value} must be at least {min}"),
        ))
    }
}

/// A count in `lo..=hi`.
pub fn count_within(field: &str, value: usize, lo: usize, hi: usize) -> Result<(), Invalid> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("= {value} must be in {lo}..={hi}"),
        ))
    }
}

/// The memory this machine has, in bytes (Linux: `MemTotal`); `None` where it cannot be read.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Refuses work whose memory `estimate` (bytes, a lower bound) exceeds this machine's memory,
/// before anything is allocated: an allocation that size would abort the process.
///
/// # Errors
/// The estimate against the machine's memory, naming `what` needs it.
pub fn fits_in_memory(what: &str, estimate: f64) -> Result<(), String> {
    let total = machine_memory().map_or(f64::INFINITY, |m| m as f64);
    if estimate <= total {
        return Ok(());
    }
    Err(format!(
        "{what} would need at least {} of memory; this machine has {}",
        human_bytes(estimate),
        human_bytes(total)
    ))
}

/// Bytes in words: `3.2 GB`.
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_estimates() {
        assert!(positive("lr", 1e-3).is_ok());
        assert_eq!(
            positive("lr", -1.0).unwrap_err().to_string(),
            "lr = -1 must be positive and finite"
        );
        assert!(positive("lr", f64::NAN).is_err() && non_negative("wd", f64::INFINITY).is_err());
        assert!(
            within("anneal", 0.5, 0.0, 1.0).is_ok() && within("anneal", 1.5, 0.0, 1.0).is_err()
        );
        assert_eq!(Invalid::new("lr", "x").within("optim").field, "optim.lr");
        assert!(fits_in_memory("a buffer", 1e3).is_ok());
        assert!(fits_in_memory("a buffer", 1e30)
            .unwrap_err()
            .contains("EB of memory"));
        assert_eq!(human_bytes(4.08e11), "408.0 GB");
    }
}
