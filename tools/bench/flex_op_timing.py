"""Single tensor operations, burn-flex against PyTorch on this CPU: the minimal reproductions
behind the README's list of what in the tiny-SD gap is burn's (scalar exp/erf, the fused
attention's naive path, strided and stride-0-broadcast element-wise operations), and bench's
fused kernels (models/src/flex_kernels) where it has one for the operation.

Run from the repository root, with the fixture venv (tools/fixtures/README.md) and after
`cargo build --release -p bench --example flex_op_timing`:
  /work/venv-fixtures/bin/python tools/bench/flex_op_timing.py [--reps 200]
"""

import argparse
import json
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F


def timed(f, reps):
    f()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        out.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    r = lambda *s: torch.randn(*s)
    scores, big = r(8, 8, 64, 77), r(8, 8, 256, 256)
    fmap, tokens = r(8, 320, 32, 32), r(8, 1024, 1280)
    q, k, v = r(8, 8, 64, 8), r(8, 8, 77, 8), r(8, 8, 77, 8)
    q2, k2, v2 = r(2, 8, 1024, 40), r(2, 8, 1024, 40), r(2, 8, 1024, 40)
    dy_small, w_small = r(8, 64, 8, 8), r(64, 64, 3, 3)
    dy_big, w_big, b_big = r(2, 320, 32, 32), r(320, 320, 3, 3), r(320)
    c32, w32, b32 = r(8, 32, 8, 8), r(32, 32, 3, 3), r(32)
    c64, w64, b64 = r(8, 64, 4, 4), r(64, 64, 3, 3), r(64)
    both, a, b = r(8, 64, 256), r(8, 64, 128), r(8, 64, 128)
    g = r(1, 320, 1, 1)
    maps = r(25, 288, 35, 35)
    gn = g.repeat(8, 1, 1, 1)
    # torch's linear weights are [d_out, d_in] (burn's the transpose).
    vit_x, vit_w, vit_b = r(16, 197, 768), r(3072, 768), r(3072)
    tiny_x, tiny_w, tiny_b = r(8, 64, 32), r(32, 32), r(32)
    w320, b320 = torch.ones(320), torch.zeros(320)
    ops = {
        "softmax [8,8,64,77] (tiny-SD cross-attention scores)": lambda: scores.softmax(3),
        "softmax [8,8,256,256]": lambda: big.softmax(3),
        "silu [8,320,32,32]": lambda: F.silu(fmap),
        "group norm (32 groups) + silu [8,320,32,32]": lambda: F.silu(F.group_norm(fmap, 32, w320, b320)),
        "exp [8,320,32,32]": lambda: fmap.exp(),
        "gelu [8,1024,1280]": lambda: F.gelu(tokens),
        "attention fused [8,8,64,8]x[8,8,77,8]": lambda: F.scaled_dot_product_attention(q, k, v),
        "attention matmul+softmax+matmul, same shapes": lambda: (
            (q * 8**-0.5) @ k.transpose(2, 3)
        ).softmax(3) @ v,
        "attention [2,8,1024,40] (SD 256² first-block self-attention), burn: matmul+softmax+matmul": lambda: F.scaled_dot_product_attention(q2, k2, v2),
        "conv 3x3 pad 1 [8,32,8,8]": lambda: F.conv2d(c32, w32, b32, padding=1),
        "conv 3x3 pad 1 [8,64,4,4]": lambda: F.conv2d(c64, w64, b64, padding=1),
        "conv 3x3 pad 1 [2,320,32,32]": lambda: F.conv2d(dy_big, w_big, b_big, padding=1),
        "conv 3x3 input gradient [8,64,8,8], burn: conv_transpose2d":
            lambda: F.conv_transpose2d(dy_small, w_small, padding=1),
        "conv 3x3 input gradient [2,320,32,32], burn: conv_transpose2d":
            lambda: F.conv_transpose2d(dy_big, w_big, padding=1),
        "avg pool 3x3 pad 1 [25,288,35,35]":
            lambda: F.avg_pool2d(maps, 3, stride=1, padding=1, count_include_pad=False),
        "max pool 3x3 stride 2 [25,288,35,35]": lambda: F.max_pool2d(maps, 3, stride=2),
        "linear [16,197,768]->3072": lambda: F.linear(vit_x, vit_w, vit_b),
        "linear [8,64,32]->32": lambda: F.linear(tiny_x, tiny_w, tiny_b),
        "mul of last-dim halves [8,64,256] (strided)": lambda: both[..., :128] * both[..., 128:],
        "mul contiguous [8,64,128]": lambda: a * b,
        "x[8,320,32,32] * g[1,320,1,1]": lambda: fmap * g,
        "x[8,320,32,32] * g[8,320,1,1]": lambda: fmap * gn,
    }
    with torch.no_grad():
        ours_torch = {name: timed(f, args.reps) for name, f in ops.items()}
    out = subprocess.run(
        ["target/release/examples/flex_op_timing", str(args.reps)],
        check=True, capture_output=True, text=True,
    ).stdout
    burn = json.loads(out)
    print(f"CPU threads: torch {torch.get_num_threads()}, burn {burn['threads']}; "
          f"medians of {args.reps} after a warm-up")
    print(f"| operation | PyTorch {torch.__version__.split('+')[0]} (µs) | burn flex (µs) | burn / PyTorch "
          f"| bench's kernel (µs) | kernel / PyTorch |")
    print("|---|---|---|---|---|---|")
    for name, t in ours_torch.items():
        f = burn["us"][name]
        kernel = burn["us"].get(f"{name}, bench's kernel")
        fused = f"| {kernel:.1f} | {kernel / t:.2f} |" if kernel is not None else "| | |"
        print(f"| {name} | {t:.1f} | {f:.1f} | {f / t:.2f} {fused}")
    rows = torch.randn(64, 512) + 100.0
    exact = F.layer_norm(rows.double(), (512,), eps=1e-5)
    torch_err = (F.layer_norm(rows, (512,), eps=1e-5).double() - exact).abs().max().item()
    print(f"layer norm of rows with mean 100, std 1, largest error against two-pass f64: "
          f"PyTorch {torch_err:.1e}, burn flex {burn['layer_norm_error']:.1e}")


if __name__ == "__main__":
    main()
