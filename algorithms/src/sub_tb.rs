//! Sub-trajectory and trajectory balance over the denoising chain (`dag_subtb`, `dag_tb`): the
//! DAG-DB loop — forward-looking flows, output regularisation, the noising kernel or (with
//! `tilted`) the pretrained denoiser as backward policy — with the loss of
//! [`crate::sub_trajectory`] in place of per-transition δ². An escape attempt from the plateau
//! of detailed balance on the toy (shared/research/db-toy-audit.md): the residuals of the last
//! steps, which fixed-variance Gaussian kernels cannot remove, no longer dominate the loss on
//! their own. Same targets as DAG-DB: exp(β·r), or p_base·exp(β·r) with `tilted` (then `dag_tb`
//! is the relative trajectory balance of ∇-GFlowNet's Appendix B.4).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, DbShared, LookAheadModel, PolicyLoss,
};
use crate::registry::Objective;
use crate::sub_trajectory::Balance;

/// `dag_subtb`'s own parameters, besides [`DbShared`]'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubTbOwn {
    /// A sub-trajectory of length ℓ weighs λ^ℓ (normalised): small λ is DB, large λ is TB.
    pub lambda: f64,
    /// The pretrained denoiser as backward policy: target p_base·exp(β·r).
    pub tilted: bool,
}

impl Default for SubTbOwn {
    fn default() -> Self {
        Self {
            lambda: 1.0,
            tilted: false,
        }
    }
}

impl FamilyMember<DbShared> for SubTbOwn {}

impl Validate for SubTbOwn {
    fn validate(&self) -> Result<(), Invalid> {
        validate::positive("lambda", self.lambda)
    }
}

/// `dag_tb`'s own parameter, besides [`DbShared`]'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TbOwn {
    /// The pretrained denoiser as backward policy: relative TB towards p_base·exp(β·r).
    pub tilted: bool,
}

impl FamilyMember<DbShared> for TbOwn {}

impl Validate for TbOwn {}

fn boxed<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
    shared: &DbShared,
    tilted: bool,
    balance: Balance,
    env: &E,
    rng: &mut StdRng,
) -> Result<Box<dyn Algorithm<B, E>>, String> {
    DbAlgorithm::boxed(
        DbSettings {
            shared: shared.clone(),
            backward: if tilted {
                BackwardPolicy::Pretrained
            } else {
                BackwardPolicy::Noising
            },
            look_ahead: LookAheadModel::Current,
            policy_loss: PolicyLoss::Balance,
            balance,
        },
        env,
        rng,
    )
}

/// `dag_subtb`'s registry entry.
pub struct SubTb;

impl Objective for SubTb {
    type Params = Family<SubTbOwn, DbShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let balance = Balance::SubTrajectory {
            lambda: params.own.lambda,
        };
        boxed(&params.shared, params.own.tilted, balance, env, rng)
    }
}

/// `dag_tb`'s registry entry.
pub struct Tb;

impl Objective for Tb {
    type Params = Family<TbOwn, DbShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        boxed(
            &params.shared,
            params.own.tilted,
            Balance::Trajectory,
            env,
            rng,
        )
    }
}
