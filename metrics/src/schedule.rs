//! At which evaluations an expensive metric runs. FID on thousands of images at every
//! evaluation costs more than the training between them; the papers report such metrics once,
//! on the final (or a selected) checkpoint, beside the base model's value.

use serde::{Deserialize, Serialize};

use crate::metric::EvalPoint;

/// The evaluations a metric takes part in (`when: Final` in its parameters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    /// Every evaluation (`eval.every`).
    Every,
    /// The base model (epoch 0, when a run starts) and the final evaluation: where training
    /// started and where it ended.
    #[default]
    BaseAndFinal,
    /// The final evaluation only.
    Final,
}

impl When {
    /// Whether the evaluation at `at` includes the metric.
    pub fn includes(self, at: &EvalPoint<'_>) -> bool {
        let last = at.epoch == at.epochs;
        match self {
            Self::Every => true,
            Self::BaseAndFinal => at.epoch == 0 || last,
            Self::Final => last,
        }
    }
}
