//! torch's CPU `randn`, so that `bench sample --seed S` starts from the latents diffusers draws
//! with `generator=torch.Generator().manual_seed(S)` and the same image follows (deterministic
//! samplers; the per-step noise of stochastic ones stays bench's own).
//!
//! torch seeds an MT19937 with the seed's low 32 bits, draws one float per value as
//! `(u32 & (2²⁴ − 1))·2⁻²⁴`, and for tensors of 16 or more values turns each block of 16 into
//! normals with Box–Muller, pairing value j with value j + 8; a last partial block is redrawn
//! as a whole block over the last 16 values. Its vectorised log/sin/cos differ from ours by
//! float rounding (1.2e-7 measured on the fixture).

use rand_mt::Mt;

/// `torch.randn(n, generator=torch.Generator().manual_seed(seed))` on the CPU, for n ≥ 16
/// (below that torch takes a different path).
///
/// # Errors
/// If `n < 16`.
pub fn torch_randn(seed: u64, n: usize) -> Result<Vec<f32>, String> {
    if n < 16 {
        return Err(format!(
            "torch-compatible noise needs at least 16 values, not {n}"
        ));
    }
    let mut mt = Mt::new(seed as u32);
    let mut uniform = || (mt.next_u32() & ((1 << 24) - 1)) as f32 * (1.0 / (1 << 24) as f32);
    let mut values: Vec<f32> = (0..n).map(|_| uniform()).collect();
    for block in values.chunks_exact_mut(16) {
        box_muller_16(block);
    }
    if !n.is_multiple_of(16) {
        let tail = &mut values[n - 16..];
        for v in tail.iter_mut() {
            *v = uniform();
        }
        box_muller_16(tail);
    }
    Ok(values)
}

/// torch's `normal_fill_16`: 16 uniforms in [0, 1) to 16 standard normals.
fn box_muller_16(block: &mut [f32]) {
    for j in 0..8 {
        let (u1, u2) = (1.0 - block[j], block[j + 8]);
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f32::consts::PI * u2;
        block[j] = radius * theta.cos();
        block[j + 8] = radius * theta.sin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fixtures/sd_tiny/sample.safetensors holds `torch.randn(2, 4, 8, 8,
    /// generator=torch.Generator().manual_seed(7))`, the first draw of its generator.
    #[test]
    fn equals_torch_randn_of_the_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/sd_tiny/sample.safetensors"
        );
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor("latents").unwrap();
        let expected: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let ours = torch_randn(7, expected.len()).unwrap();
        let worst = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("torch randn: largest difference {worst:e}");
        assert!(worst < 1e-6, "largest difference {worst:e}");
        // Another seed gives other values, and a partial last block is redrawn whole.
        assert!(torch_randn(8, expected.len()).unwrap()[0] != ours[0]);
        let partial = torch_randn(7, 37).unwrap();
        assert_eq!(partial[..16], ours[..16]);
        assert!(torch_randn(7, 15).is_err());
    }
}
