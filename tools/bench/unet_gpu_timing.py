"""SD v1.5's UNet on a GPU, bench against diffusers/PyTorch: the forward pass and forward +
backward of a rank-4 LoRA on the frozen UNet (the cost of a training step through the UNet), at
512² in f32 and bf16, with SD v1.5-shaped random weights (no download). Prints images/s and the
fraction of the GPU's peak, both sides from the same process tree on the same machine.

    cargo build --release -p bench --features cuda --example unet_timing
    python tools/bench/unet_gpu_timing.py [--batch 4] [--reps 5] [--side 512]

The PyTorch side needs torch (CUDA), diffusers and peft importable; without them only bench's
numbers are printed. FLOPs: 803 GFLOP per 512² forward (SD v1.5's UNet, batch 1, as counted
for this project); forward + backward with frozen weights is taken as 2× (activation gradients,
no weight gradients but the LoRA's). Peak: --peak-f32 / --peak-bf16 in TFLOP/s (defaults: an
H100 SXM's dense 67 f32 and 989 bf16; H200 has the same).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

FORWARD_GFLOP_512 = 803.0


def bench_side(args, dtype):
    cmd = [args.binary, args.device, dtype, str(args.batch), str(args.side), str(args.reps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip()}
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_side(args, dtype_name):
    try:
        import torch
        from diffusers import UNet2DConditionModel
    except ImportError as e:
        return {"error": f"PyTorch side skipped: {e}"}
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=args.side // 8, cross_attention_dim=768)
    unet = unet.to(dev, dtype).eval()
    n, lat = args.batch, args.side // 8
    x = torch.randn(n, 4, lat, lat, device=dev, dtype=dtype)
    t = torch.full((n,), 500, device=dev)
    ctx = torch.randn(n, 77, 768, device=dev, dtype=dtype)

    def timed(f):
        f()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        ms = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            f()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            ms.append((time.perf_counter() - t0) * 1e3)
        return ms

    with torch.no_grad():
        forward = timed(lambda: unet(x, t, ctx).sample)
    result = {"forward_ms": forward, "device": str(dev), "torch": torch.__version__}
    try:
        from peft import LoraConfig
    except ImportError as e:
        result["backward_error"] = f"peft missing: {e}"
        return result
    unet.requires_grad_(False)
    # LoRA in f32 beside bf16 weights, as diffusers' training scripts keep it.
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()

    def step():
        unet.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = unet(x, t, ctx).sample.float().square().mean()
        loss.backward()

    result["forward_backward_ms"] = timed(step)
    return result


def line(name, dtype, r, args, peak):
    if "error" in r:
        return f"| {name} | {dtype} | {r['error']} | | | |"
    cells = []
    for key, factor in (("forward_ms", 1.0), ("forward_backward_ms", 2.0)):
        if key not in r:
            cells += ["", ""]
            continue
        ms = statistics.median(r[key])
        images = args.batch / (ms / 1e3)
        flops = FORWARD_GFLOP_512 * (args.side / 512) ** 2 * factor * images / 1e3
        cells += [f"{ms:.1f} ms, {images:.2f} img/s", f"{flops / peak:.1%}"]
    return f"| {name} | {dtype} | " + " | ".join(cells) + " |"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default="target/release/examples/unet_timing")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--side", type=int, default=512)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--peak-f32", type=float, default=67.0)
    p.add_argument("--peak-bf16", type=float, default=989.0)
    p.add_argument("--skip-torch", action="store_true")
    args = p.parse_args()
    print(f"SD v1.5 UNet, batch {args.batch}, {args.side}², medians of {args.reps}")
    print("| side | dtype | forward | of peak | forward+backward (LoRA) | of peak |")
    print("|---|---|---|---|---|---|")
    raw = {}
    for dtype in ("f32", "bf16"):
        peak = args.peak_f32 if dtype == "f32" else args.peak_bf16
        b = bench_side(args, dtype)
        raw[f"bench_{dtype}"] = b
        print(line("bench", dtype, b, args, peak))
        if not args.skip_torch:
            t = torch_side(args, dtype)
            raw[f"torch_{dtype}"] = t
            print(line("PyTorch", dtype, t, args, peak))
        sys.stdout.flush()
    print(json.dumps(raw))


if __name__ == "__main__":
    main()
