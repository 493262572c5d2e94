//! Differentiable rewards give their image gradients through autodiff, equal to the closed
//! form of the toy rewards.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_rewards::{builtin_reward, image_gradient, Reward};

type B = Autodiff<Flex>;

/// A built-in reward with its default parameters.
fn reward(name: &str) -> Box<dyn Reward<B>> {
    builtin_reward::<B>(name, &Default::default()).unwrap()
}

fn points(values: &[f32]) -> Tensor<B, 4> {
    let n = values.len() / 2;
    Tensor::from_data(
        TensorData::new(values.to_vec(), [n, 2, 1, 1]),
        &Default::default(),
    )
}

#[test]
fn bump_gradient_is_its_closed_form() {
    // r = −‖x − c‖²/(2w²) with c = (0.6, 0.6), w = 0.5: ∇r = −(x − c)/w².
    let reward = reward("bump");
    let xs = [0.1f32, -0.3, 1.2, 0.6, -0.8, 2.0];
    let g = image_gradient(reward.as_ref(), points(&xs), &vec![String::new(); 3])
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    for (x, g) in xs.iter().zip(&g) {
        let expected = -(x - 0.6) / 0.25;
        assert!((g - expected).abs() < 1e-5, "{g} vs {expected}");
    }
}

#[test]
fn mixture_gradient_matches_finite_differences() {
    let reward = reward("mixture");
    let prompts = vec![String::new()];
    let x = [0.4f32, 0.7];
    let g = image_gradient(reward.as_ref(), points(&x), &prompts)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let r = |p: [f32; 2]| reward.score(points(&p).inner(), &prompts).into_scalar() as f64;
    let h = 1e-3;
    for d in 0..2 {
        let (mut up, mut down) = (x, x);
        up[d] += h;
        down[d] -= h;
        let numeric = (r(up) - r(down)) / (2.0 * h as f64);
        assert!(
            (numeric - g[d] as f64).abs() < 1e-2 * numeric.abs().max(1.0),
            "dimension {d}: {numeric} vs {}",
            g[d]
        );
    }
}
