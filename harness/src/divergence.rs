//! Divergence: a run whose loss, gradient norm or reward becomes non-finite stops, marked
//! `DIVERGED` with the epoch and the quantity, instead of training on garbage and reporting
//! NaN averages; a finite value that explodes is only warned about.

use bench_algorithms::Scalars;

/// A finite value beyond this is reported as exploding (it is not an error: some losses are
/// large by design, e.g. with β = 1e4).
pub const EXPLODING: f64 = 1e10;

/// What became non-finite, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// Epochs trained when it was seen (the evaluation after them, or the epoch's training).
    pub epoch: usize,
    /// The quantity: a training scalar's name, or what the evaluation found.
    pub quantity: String,
    pub value: f64,
}

impl Divergence {
    /// The `DIVERGED` marker's text, read back by `bench table`.
    pub fn marker(&self) -> String {
        format!(
            "epoch = {}\nquantity = {}\nvalue = {}\n",
            self.epoch, self.quantity, self.value
        )
    }

    /// Reads a marker back.
    pub fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
                .map(str::trim)
        };
        Some(Self {
            epoch: field("epoch")?.parse().ok()?,
            quantity: field("quantity")?.to_string(),
            value: field("value")?.parse().unwrap_or(f64::NAN),
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "diverged at epoch {}: {} = {}",
            self.epoch, self.quantity, self.value
        )
    }
}

/// Checks one epoch's training scalars: the first non-finite one is a divergence; finite ones
/// beyond [`EXPLODING`] come back as warnings.
///
/// # Errors
/// The divergence.
pub fn check(epoch: usize, scalars: &Scalars) -> Result<Vec<String>, Divergence> {
    if let Some((k, v)) = scalars.iter().find(|(_, v)| !v.is_finite()) {
        return Err(Divergence {
            epoch,
            quantity: k.clone(),
            value: *v,
        });
    }
    Ok(scalars
        .iter()
        .filter(|(_, v)| v.abs() > EXPLODING)
        .map(|(k, v)| format!("epoch {epoch}: {k} = {v:e} is exploding"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_stops_and_exploding_warns() {
        let s = |v: f64| vec![("reward_mean".to_string(), 1.0), ("loss".to_string(), v)];
        assert!(check(3, &s(2.0)).unwrap().is_empty());
        assert_eq!(check(3, &s(1e17)).unwrap().len(), 1);
        let d = check(3, &s(f64::NAN)).unwrap_err();
        assert_eq!((d.epoch, d.quantity.as_str()), (3, "loss"));
        assert_eq!(Divergence::parse(&d.marker()).unwrap().quantity, "loss");
        assert!(check(3, &s(f64::INFINITY)).is_err());
    }
}
