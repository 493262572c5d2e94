//! Times SD v1.5's UNet (its exact layout, random weights) on a device: the forward pass on the
//! inference backend, and forward + backward of a rank-4 LoRA on the frozen UNet (what a
//! training step through the UNet costs), in f32 or bf16/f16 frozen weights. For
//! `tools/bench/unet_gpu_timing.py`, which runs diffusers on the same work; prints one JSON
//! object with per-repetition milliseconds.
//!
//! `cargo run --release -p bench --features cuda --example unet_timing -- cuda bf16 4 512 5`
//! (device, dtype, batch, image side, repetitions; `cpu f32 1 128 2` for a smoke run here).

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use rand::{rngs::StdRng, SeedableRng};

use bench::backend::HarnessBackend;
use bench::device::{DeviceSpec, OnDevice};
use bench_models::sd::aux_nets::random_init;
use bench_models::sd::{LoraConfig, UNet2DConditionModel, UNetConfig, UNetLora};
use bench_models::{cast_module, Precision};

#[path = "support/timing.rs"]
mod timing;
use timing::repeat_ms;

struct Timing {
    dtype: Precision,
    batch: usize,
    side: usize,
    reps: usize,
}

impl OnDevice for Timing {
    type Output = (Vec<f64>, Vec<f64>);

    fn run<B: HarnessBackend>(self, devices: Vec<B::Device>) -> Self::Output {
        let device = &devices[0];
        let config = UNetConfig::sd15();
        let mut rng = StdRng::seed_from_u64(0);
        let unet: UNet2DConditionModel<B::InnerBackend> =
            cast_module(random_init(config.init(device), &mut rng), self.dtype);
        let latent = self.side / 8;
        let n = self.batch;
        let x = Tensor::<B::InnerBackend, 4>::random(
            [n, 4, latent, latent],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        let t = Tensor::<B::InnerBackend, 1>::from_floats(vec![500.0f32; n].as_slice(), device);
        let ctx = Tensor::<B::InnerBackend, 3>::random(
            [n, 77, config.cross_attention_dim],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        let forward = repeat_ms(self.reps, || {
            let eps = unet.forward(x.clone(), t.clone(), ctx.clone());
            let _ = eps.sum().into_scalar();
        });

        let frozen = UNet2DConditionModel::<B>::from_inner(unet).no_grad();
        let lora = UNetLora::<B>::new(
            &frozen.lora_layout(),
            LoraConfig::default(),
            &mut rng,
            device,
        );
        let (x, t, ctx) = (
            Tensor::<B, 4>::from_inner(x),
            Tensor::<B, 1>::from_inner(t),
            Tensor::<B, 3>::from_inner(ctx),
        );
        let backward = repeat_ms(self.reps, || {
            let eps = frozen.forward_with_lora(x.clone(), t.clone(), ctx.clone(), Some(&lora));
            let grads = eps.square().mean().backward();
            let up = &lora.down_blocks[0].attentions[0].transformer_blocks[0]
                .attn1
                .to_q
                .up;
            let g = up
                .weight
                .val()
                .grad(&grads)
                .expect("the LoRA has a gradient");
            let _ = g.sum().into_scalar();
            drop::<<B as AutodiffBackend>::Gradients>(grads);
        });
        (forward, backward)
    }
}

fn main() {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench` computes its commands.
    bench::compute_pool::ComputePool::whole_machine().run(timings)
}

fn timings() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let device: DeviceSpec = arg(1, "cpu").parse().expect("device");
    let dtype: Precision = arg(2, "f32").parse().expect("dtype");
    let batch: usize = arg(3, "1").parse().expect("batch");
    let side: usize = arg(4, "128").parse().expect("image side");
    let reps: usize = arg(5, "2").parse().expect("repetitions");
    let (forward, backward) = match device.run(Timing {
        dtype,
        batch,
        side,
        reps,
    }) {
        Ok(times) => times,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{{\"device\": \"{device}\", \"dtype\": \"{}\", \"batch\": {batch}, \"side\": {side}, \
         \"forward_ms\": {forward:?}, \"forward_backward_ms\": {backward:?}}}",
        dtype.name()
    );
}
