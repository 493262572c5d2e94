"""Tiny-SD timings, diffusers/PyTorch against bench (burn), side by side on this CPU.

Both do the same work on the same fixture model (fixtures/sd_tiny, fp32 after loading):
  rollout: 50 DDIM steps (eta 1) with CFG 5 (both branches in one UNet call) and each
           transition's log-prob, batch 4, 16x16 images (8x8 latents), base model;
  step:    one training step of a rank-4 LoRA (to_q/to_k/to_v/to_out.0): the guided log-prob
           of fixed transitions at one timestep, backward, gradient clipping at 1, AdamW.
Prints medians over repetitions (after one warm-up each), their ratio, and peak memory.

Run from the repository root, with the fixture venv (tools/fixtures/README.md) and after
`cargo build --release -p bench --example sd_timing`:
  /tmp/venv-fixtures/bin/python tools/bench/tiny_sd_timing.py [--reps 7]
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import time

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from peft import LoraConfig

PROMPTS = ["a photo of a cat", "an astronaut riding a horse"]


def ddim_gaussian(sched, eps, t, t_prev, x, eta=1.0):
    a = sched.alphas_cumprod[t]
    ap = sched.alphas_cumprod[t_prev] if t_prev >= 0 else sched.final_alpha_cumprod
    std = eta * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
    x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
    mean = math.sqrt(ap) * x0 + math.sqrt(1 - ap - std**2) * eps
    return mean, std


def log_prob(x, mean, std):
    lp = -((x - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).mean(1)


def guided_eps(unet, x, t, ctx, w=5.0):
    eps = unet(torch.cat([x, x]), t, ctx).sample
    uncond, cond = eps.chunk(2)
    return uncond + w * (cond - uncond)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--exe", default="target/release/examples/sd_timing",
                    help="bench's timing example; another build's for a before/after table")
    args = ap.parse_args()
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    pipe = StableDiffusionPipeline.from_pretrained(
        "fixtures/sd_tiny", safety_checker=None, torch_dtype=torch.float32
    )
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(args.steps)
    ts = [int(t) for t in sched.timesteps]
    unet, n = pipe.unet, args.batch
    prompts = [PROMPTS[i % 2] for i in range(n)]
    with torch.no_grad():
        ids = lambda p: pipe.tokenizer(p, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ctx = torch.cat([pipe.text_encoder(ids([""] * n))[0], pipe.text_encoder(ids(prompts))[0]])
    gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def rollout():
        x = torch.randn(n, 4, 8, 8, generator=gen)
        for i, t in enumerate(ts):
            eps = guided_eps(unet, x, t, ctx)
            mean, std = ddim_gaussian(sched, eps, t, ts[i + 1] if i + 1 < len(ts) else -1, x)
            nxt = mean + std * torch.randn(x.shape, generator=gen)
            log_prob(nxt, mean, std)
            x = nxt
        return x

    def timed(f, reps):
        f()  # warm-up
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    torch_rollout = timed(rollout, args.reps)

    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-4)
    k = args.steps // 2
    x = torch.randn(n, 4, 8, 8, generator=gen)
    with torch.no_grad():
        mean, std = ddim_gaussian(sched, guided_eps(unet, x, ts[k], ctx), ts[k], ts[k + 1], x)
        nxt = mean + std * torch.randn(x.shape, generator=gen)

    def step():
        mean, std = ddim_gaussian(sched, guided_eps(unet, x, ts[k], ctx), ts[k], ts[k + 1], x)
        loss = -log_prob(nxt, mean, std).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    torch_step = timed(step, args.reps)
    torch_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    exe = args.exe
    out = subprocess.run(
        [exe, "fixtures/sd_tiny", str(n), str(args.steps), str(args.reps + 1), "16"],
        check=True, capture_output=True, text=True,
    ).stdout
    ours = json.loads(out)
    ours_rss = ours["peak_rss_kib"]
    med = statistics.median
    print(f"CPU threads: torch {torch.get_num_threads()}, burn {ours['threads']}; "
          f"batch {n}, {args.steps} steps, {args.reps} repetitions after a warm-up")
    print("| work | diffusers/PyTorch 2.5.1 (ms) | bench, burn flex (ms) | bench / PyTorch |")
    print("|---|---|---|---|")
    for name, t, b in (("CFG rollout", torch_rollout, ours["rollout_ms"][1:]),
                       ("LoRA training step", torch_step, ours["step_ms"][1:])):
        print(f"| {name} | {med(t):.1f} | {med(b):.1f} | {med(b) / med(t):.2f} |")
    print(f"peak RSS: PyTorch process {torch_rss / 1024:.0f} MiB ({rss_after_import / 1024:.0f} MiB "
          f"of it after `import torch, diffusers`); bench process {ours_rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
