//! Sinusoidal timestep features, as diffusers' `get_timestep_embedding` (flip_sin_to_cos = true,
//! shift 0): `[cos(t·f_i), sin(t·f_i)]` with `f_i = exp(−ln(10000)·i/half)`.

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Features `[N, dim]` for timesteps `t` (training-schedule units, 0..1000).
pub fn sinusoidal_embedding<B: Backend>(
    timesteps: &[f64],
    dim: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let half = dim / 2;
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let freqs = (0..half).map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp());
        let args: Vec<f64> = freqs.map(|f| t * f).collect();
        data.extend(args.iter().map(|a| a.cos() as f32));
        data.extend(args.iter().map(|a| a.sin() as f32));
        data.extend(std::iter::repeat_n(0.0f32, dim - 2 * half));
    }
    Tensor::from_data(TensorData::new(data, [timesteps.len(), dim]), device)
}
