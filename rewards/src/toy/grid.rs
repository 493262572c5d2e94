//! A density known up to a constant, tabulated on a fine square grid: exact to the grid's
//! resolution, which is what any 2-D target needs when it has no closed form.

use rand::Rng;

use bench_models::Point;

#[derive(Clone, Debug)]
pub struct GridDensity {
    lo: f64,
    cell: f64,
    side: usize,
    /// Normalised probability mass of each cell, row-major (x index outer).
    mass: Vec<f64>,
    cumulative: Vec<f64>,
}

impl GridDensity {
    /// Tabulates `exp(log_density)` at the centres of `side × side` cells covering
    /// `[lo, hi]²` and normalises.
    pub fn new(lo: f64, hi: f64, side: usize, log_density: impl Fn(Point) -> f64) -> Self {
        let cell = (hi - lo) / side as f64;
        let logs: Vec<f64> = (0..side * side)
            .map(|i| log_density(Self::centre_of(lo, cell, side, i)))
            .collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut mass: Vec<f64> = logs.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = mass.iter().sum();
        mass.iter_mut().for_each(|m| *m /= total);
        let cumulative = mass
            .iter()
            .scan(0.0, |acc, m| {
                *acc += m;
                Some(*acc)
            })
            .collect();
        Self {
            lo,
            cell,
            side,
            mass,
            cumulative,
        }
    }

    fn centre_of(lo: f64, cell: f64, side: usize, i: usize) -> Point {
        [
            lo + (i / side) as f64 * cell + cell / 2.0,
            lo + (i % side) as f64 * cell + cell / 2.0,
        ]
    }

    /// Cell centres with their probability mass.
    pub fn cells(&self) -> impl Iterator<Item = (Point, f64)> + '_ {
        self.mass
            .iter()
            .enumerate()
            .map(|(i, &m)| (Self::centre_of(self.lo, self.cell, self.side, i), m))
    }

    /// The normalised density at `x` (0 outside the grid).
    pub fn density(&self, x: Point) -> f64 {
        let ix = ((x[0] - self.lo) / self.cell).floor();
        let iy = ((x[1] - self.lo) / self.cell).floor();
        let side = self.side as f64;
        if ix < 0.0 || iy < 0.0 || ix >= side || iy >= side {
            return 0.0;
        }
        self.mass[ix as usize * self.side + iy as usize] / (self.cell * self.cell)
    }

    /// Samples: a cell by its mass, then a uniform point inside it.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<Point> {
        (0..n)
            .map(|_| {
                let u: f64 = rng.random::<f64>() * self.cumulative[self.cumulative.len() - 1];
                let i = self
                    .cumulative
                    .partition_point(|&c| c <= u)
                    .min(self.mass.len() - 1);
                let c = Self::centre_of(self.lo, self.cell, self.side, i);
                [
                    c[0] + (rng.random::<f64>() - 0.5) * self.cell,
                    c[1] + (rng.random::<f64>() - 0.5) * self.cell,
                ]
            })
            .collect()
    }
}
