//! Single burn-flex operations that a tiny-SD rollout spends its time in, each timed alone: the
//! minimal reproductions behind the README's "what is burn's" list, for burn's issue tracker,
//! and beside them `bench`'s fused kernels for the same work (`bench_models::flex_kernels`).
//! `tools/bench/flex_op_timing.py` times the same operations in PyTorch and prints both.
//!
//! `cargo run --release -p bench --example flex_op_timing -- 200` (repetitions). Prints one
//! JSON object: operation name → median microseconds, and the f32 layer norm's largest error on
//! rows of mean 100 (a cancellation, not a timing).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use bench_models::flex_kernels;
use burn::backend::Flex;
use burn::nn::LayerNormConfig;
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::module::{attention, avg_pool2d, conv2d, conv_transpose2d, linear, max_pool2d};
use burn::tensor::ops::{AttentionModuleOptions, ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, Distribution, Tensor};

type B = Flex;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// Median microseconds of `reps` calls of `f`, after one warm-up call; `f` reads its result
/// back (`into_data`) so lazy work is counted.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut us: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    us[us.len() / 2]
}

fn main() {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench` computes its commands.
    bench::compute_pool::ComputePool::whole_machine().run(timings)
}

fn timings() {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("repetitions"))
        .unwrap_or(200);
    let mut out = BTreeMap::new();
    let mut record = |name: &str, us: f64| {
        out.insert(name.to_string(), us);
    };

    // Transcendentals: burn-flex evaluates exp (softmax, sigmoid/SiLU) and erf (GELU) one
    // element at a time through libm; PyTorch's kernels are vectorised.
    let scores = random([8, 8, 64, 77]);
    record(
        "softmax [8,8,64,77] (tiny-SD cross-attention scores)",
        time(reps, || {
            black_box(softmax(scores.clone(), 3).into_data());
        }),
    );
    record(
        "softmax [8,8,64,77] (tiny-SD cross-attention scores), bench's kernel",
        time(reps, || {
            black_box(
                flex_kernels::softmax_last(scores.clone())
                    .unwrap()
                    .into_data(),
            );
        }),
    );
    let big_scores = random([8, 8, 256, 256]);
    record(
        "softmax [8,8,256,256], bench's kernel",
        time(reps, || {
            black_box(
                flex_kernels::softmax_last(big_scores.clone())
                    .unwrap()
                    .into_data(),
            );
        }),
    );
    record(
        "softmax [8,8,256,256]",
        time(reps, || {
            black_box(softmax(big_scores.clone(), 3).into_data());
        }),
    );
    let feature_map = random([8, 320, 32, 32]);
    record(
        "silu [8,320,32,32]",
        time(reps, || {
            black_box(silu(feature_map.clone()).into_data());
        }),
    );
    record(
        "silu [8,320,32,32], bench's kernel",
        time(reps, || {
            black_box(flex_kernels::silu(feature_map.clone()).unwrap().into_data());
        }),
    );
    let norm = burn::nn::GroupNormConfig::new(32, 320).init::<B>(&Default::default());
    record(
        "group norm (32 groups) + silu [8,320,32,32]",
        time(reps, || {
            black_box(silu(norm.forward(feature_map.clone())).into_data());
        }),
    );
    let affine = || {
        let gamma = norm.gamma.as_ref().expect("affine").val();
        Some((gamma, norm.beta.as_ref().expect("affine").val()))
    };
    record(
        "group norm (32 groups) + silu [8,320,32,32], bench's kernel",
        time(reps, || {
            let y = flex_kernels::group_norm(feature_map.clone(), 32, affine(), 1e-5, true);
            black_box(y.unwrap().into_data());
        }),
    );
    record(
        "exp [8,320,32,32]",
        time(reps, || {
            black_box(feature_map.clone().exp().into_data());
        }),
    );
    let tokens = random([8, 1024, 1280]);
    record(
        "gelu [8,1024,1280]",
        time(reps, || {
            black_box(gelu(tokens.clone()).into_data());
        }),
    );
    record(
        "gelu [8,1024,1280], bench's kernel",
        time(reps, || {
            black_box(flex_kernels::gelu(tokens.clone()).unwrap().into_data());
        }),
    );

    // burn's fused attention (burn-flex's naive path at these lengths) against the same
    // attention as matmul → softmax → matmul.
    let (q, k, v) = (
        random([8, 8, 64, 8]),
        random([8, 8, 77, 8]),
        random([8, 8, 77, 8]),
    );
    record(
        "attention fused [8,8,64,8]x[8,8,77,8]",
        time(reps, || {
            let o = attention(
                q.clone(),
                k.clone(),
                v.clone(),
                None,
                None,
                AttentionModuleOptions::default(),
            );
            black_box(o.into_data());
        }),
    );
    record(
        "attention matmul+softmax+matmul, same shapes",
        time(reps, || {
            let s = (q.clone() * (8f64).powf(-0.5)).matmul(k.clone().swap_dims(2, 3));
            black_box(softmax(s, 3).matmul(v.clone()).into_data());
        }),
    );
    // bench's kernel reads the heads from the projections' `[N, L, heads·d]` layout.
    let heads_merged = |t: &Tensor<B, 4>| {
        let [n, h, l, d] = t.dims();
        t.clone().swap_dims(1, 2).reshape([n, l, h * d]).into_data()
    };
    let [qm, km, vm] =
        [&q, &k, &v].map(|t| Tensor::<B, 3>::from_data(heads_merged(t), &Default::default()));
    record(
        "attention fused [8,8,64,8]x[8,8,77,8], bench's kernel",
        time(reps, || {
            let o = flex_kernels::attention(qm.clone(), km.clone(), vm.clone(), 8, 8f64.powf(-0.5));
            black_box(o.unwrap().into_data());
        }),
    );
    // Self-attention of SD's first block at 256² (32² latent tokens, 40-wide heads).
    let (q, k, v) = (
        random([2, 8, 1024, 40]),
        random([2, 8, 1024, 40]),
        random([2, 8, 1024, 40]),
    );
    let scale = 40f64.powf(-0.5);
    record(
        "attention [2,8,1024,40] (SD 256² first-block self-attention), burn: matmul+softmax+matmul",
        time(reps, || {
            let s = (q.clone() * scale).matmul(k.clone().swap_dims(2, 3));
            black_box(softmax(s, 3).matmul(v.clone()).into_data());
        }),
    );
    let [qm, km, vm] =
        [&q, &k, &v].map(|t| Tensor::<B, 3>::from_data(heads_merged(t), &Default::default()));
    record(
        "attention [2,8,1024,40] (SD 256² first-block self-attention), burn: matmul+softmax+matmul, bench's kernel",
        time(reps, || {
            let o = flex_kernels::attention(qm.clone(), km.clone(), vm.clone(), 8, scale);
            black_box(o.unwrap().into_data());
        }),
    );

    // A 3×3 convolution forward at the tiny UNet's shapes and at SD 256²'s first block.
    for (name, [n, c, hw]) in [
        ("[8,32,8,8]", [8, 32, 8]),
        ("[8,64,4,4]", [8, 64, 4]),
        ("[2,320,32,32]", [2, 320, 32]),
    ] {
        let (x, w, b) = (random([n, c, hw, hw]), random([c, c, 3, 3]), random([c]));
        record(
            &format!("conv 3x3 pad 1 {name}"),
            time(reps, || {
                let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
                let y = conv2d(x.clone(), w.clone(), Some(b.clone()), options);
                black_box(y.into_data());
            }),
        );
        record(
            &format!("conv 3x3 pad 1 {name}, bench's kernel"),
            time(reps, || {
                let y = flex_kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), [1, 1], [1, 1]);
                black_box(y.unwrap().into_data());
            }),
        );
    }

    // The FID Inception's pools at its 35² stage (batch 25): burn-flex pools through its 3-D
    // path with a closure call per tap.
    let maps = random([25, 288, 35, 35]);
    record(
        "avg pool 3x3 pad 1 [25,288,35,35]",
        time(reps, || {
            let y = avg_pool2d(maps.clone(), [3, 3], [1, 1], [1, 1], false, false);
            black_box(y.into_data());
        }),
    );
    record(
        "avg pool 3x3 pad 1 [25,288,35,35], bench's kernel",
        time(reps, || {
            let y = flex_kernels::avg_pool2d(maps.clone(), [3, 3], [1, 1], [1, 1], false);
            black_box(y.unwrap().into_data());
        }),
    );
    record(
        "max pool 3x3 stride 2 [25,288,35,35]",
        time(reps, || {
            let y = max_pool2d(maps.clone(), [3, 3], [2, 2], [0, 0], [1, 1], false);
            black_box(y.into_data());
        }),
    );
    record(
        "max pool 3x3 stride 2 [25,288,35,35], bench's kernel",
        time(reps, || {
            let y = flex_kernels::max_pool2d(maps.clone(), [3, 3], [2, 2], [0, 0]);
            black_box(y.unwrap().into_data());
        }),
    );

    // `Linear` on `[batch, tokens, d_in]`: burn-flex runs one single-threaded `gemm` per batch
    // item (packing the weight again for each) and adds the bias in a second pass; bench's
    // kernel is one faer product over all rows onto the bias. DreamSim's ViT-B/16 MLP (batch
    // 16, 197 tokens) and a tiny-UNet projection.
    for (name, [n, l, d_in, d_out]) in [
        ("[16,197,768]->3072", [16, 197, 768, 3072]),
        ("[8,64,32]->32", [8, 64, 32, 32]),
    ] {
        let (x, w, b) = (random([n, l, d_in]), random([d_in, d_out]), random([d_out]));
        record(
            &format!("linear {name}"),
            time(reps, || {
                let y = linear(x.clone(), w.clone(), Some(b.clone()));
                black_box(y.into_data());
            }),
        );
        record(
            &format!("linear {name}, bench's kernel"),
            time(reps, || {
                let y = flex_kernels::linear(x.clone(), &w, Some(&b));
                black_box(y.unwrap().into_data());
            }),
        );
    }

    // A convolution's input gradient: burn's autodiff takes it as `conv_transpose2d`, whose
    // burn-flex col2im scatters one element at a time through a function pointer on one thread;
    // at stride 1 it is the convolution of the output gradient with the kernel flipped and its
    // channels swapped, which bench's recorded convolution runs through its own kernel.
    for (name, [n, c, hw]) in [("[8,64,8,8]", [8, 64, 8]), ("[2,320,32,32]", [2, 320, 32])] {
        let (dy, w) = (random([n, c, hw, hw]), random([c, c, 3, 3]));
        let label = format!("conv 3x3 input gradient {name}, burn: conv_transpose2d");
        let transpose = ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1);
        record(
            &label,
            time(reps, || {
                let dx = conv_transpose2d(dy.clone(), w.clone(), None, transpose.clone());
                black_box(dx.into_data());
            }),
        );
        let flipped = w.clone().swap_dims(0, 1).flip([2, 3]);
        record(
            &format!("{label}, bench's kernel"),
            time(reps, || {
                let dx = flex_kernels::conv2d(dy.clone(), flipped.clone(), None, [1, 1], [1, 1]);
                black_box(dx.unwrap().into_data());
            }),
        );
    }

    // Element-wise products of strided views (halves of the last dim, as GEGLU's chunk makes)
    // take burn-flex's generic strided iterator; contiguous operands take its SIMD kernel.
    let both = random([8, 64, 256]);
    let (a, b) = (random([8, 64, 128]), random([8, 64, 128]));
    record(
        "mul of last-dim halves [8,64,256] (strided)",
        time(reps, || {
            let x = both.clone().narrow(2, 0, 128) * both.clone().narrow(2, 128, 128);
            black_box(x.into_data());
        }),
    );
    record(
        "mul contiguous [8,64,128]",
        time(reps, || {
            black_box((a.clone() * b.clone()).into_data());
        }),
    );

    // A per-channel scale broadcast over the batch: `[1,C,1,1]` (stride-0 batch dim) misses
    // burn-flex's row-broadcast kernel; `[N,C,1,1]` takes it.
    let gamma = random([1, 320, 1, 1]);
    let gamma_n = gamma.clone().repeat_dim(0, 8);
    record(
        "x[8,320,32,32] * g[1,320,1,1]",
        time(reps, || {
            black_box((feature_map.clone() * gamma.clone()).into_data());
        }),
    );
    record(
        "x[8,320,32,32] * g[8,320,1,1]",
        time(reps, || {
            black_box((feature_map.clone() * gamma_n.clone()).into_data());
        }),
    );

    // Not a timing: burn-flex's f32 layer norm takes the variance as E[x²] − E[x]², which
    // cancels on rows whose mean is large against their spread. Rows of mean 100 and standard
    // deviation 1 through burn's `LayerNorm` (unit scale, zero shift), against the two-pass
    // statistics (what PyTorch computes) in f64.
    let rows = random([64, 512]).add_scalar(100.0);
    let fused = LayerNormConfig::new(512)
        .init::<B>(&Default::default())
        .forward(rows.clone());
    let exact = {
        let rows = rows.cast(DType::F64);
        let centred = rows.clone() - rows.mean_dim(1);
        let var = centred.clone().square().mean_dim(1);
        centred / var.add_scalar(1e-5).sqrt()
    };
    let layer_norm_error = (fused.cast(DType::F64) - exact).abs().max().into_scalar();

    let threads = rayon::current_num_threads();
    let json: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v:.1}"))
        .collect();
    println!(
        "{{\"threads\": {threads}, \"layer_norm_error\": {layer_norm_error:e}, \"us\": {{{}}}}}",
        json.join(", ")
    );
}
