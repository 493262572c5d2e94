//! Mean brightness: the simplest differentiable image reward, for end-to-end tests of image
//! environments without reward-model weights.

use burn::tensor::{backend::Backend, Tensor};

use crate::reward::TensorReward;

/// r(image) = mean over channels and pixels.
#[derive(Clone, Copy, Debug, Default)]
pub struct Brightness;

impl TensorReward for Brightness {
    fn name(&self) -> &str {
        "brightness"
    }

    fn score<B: Backend>(&self, images: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let [n, c, h, w] = images.dims();
        images.reshape([n, c * h * w]).mean_dim(1).reshape([n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::TensorData;

    type B = Autodiff<Flex>;

    #[test]
    fn mean_and_gradient() {
        let images = Tensor::<B, 4>::from_data(
            TensorData::new(
                vec![0.0f32, 0.5, 1.0, 0.5, 0.2, 0.2, 0.2, 0.2],
                [2, 1, 2, 2],
            ),
            &Default::default(),
        );
        let r = Brightness.score(images.clone(), &["a".into(), "b".into()]);
        assert_eq!(
            r.clone().into_data().to_vec::<f32>().unwrap(),
            vec![0.5, 0.2]
        );
        let reward: &dyn crate::Reward<B> = &crate::OnAnyBackend(Brightness);
        let g = crate::image_gradient(reward, images, &["a".into(), "b".into()]).unwrap();
        assert!(g.into_data().iter::<f32>().all(|v| (v - 0.25).abs() < 1e-7));
    }
}
