"""Network-reward timings on the tiny fixtures, PyTorch (transformers / open_clip) against bench,
side by side on this CPU.

Both do the same work with the same networks (fixtures/reward_nets/clip_tiny and its aesthetic
head, fixtures/openclip/hps_tiny.pt, fixtures/image_reward/image_reward_tiny.pt): a batch of
random images in [0, 1] and alternating prompts; `score`: preprocessing (the differentiable
paths: torch bicubic for CLIP, HPSv2's ResizeMaxSize, ∇-GFlowNet's ImageReward path with
512-token prompts) and the reward without a graph; `gradient`: the same with autograd and the gradient with respect
to the images. Prints medians over repetitions (after one warm-up each) and their ratios.

Run from the repository root, with the fixture venv (tools/fixtures/README.md: transformers,
open_clip, image-reward) and after `cargo build --release -p bench --example reward_timing`:
  /work/venv-fixtures/bin/python tools/bench/reward_timing.py [--batch 8] [--side 64] [--reps 20]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from transformers import CLIPModel, CLIPTokenizer

sys.path.insert(0, "tools/fixtures")
from make_image_reward import nabla_gfn_reward, tiny_model  # noqa: E402
from make_openclip import CONFIG, MEAN, STD, resize_max_size  # noqa: E402
from make_reward_nets import head  # noqa: E402

PROMPTS = ["a photo of a cat", "an oil painting of a dog"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    import open_clip
    import torchvision.transforms.functional as F
    from open_clip.model import CLIP

    clip = CLIPModel.from_pretrained("fixtures/reward_nets/clip_tiny").eval()
    tokenizer = CLIPTokenizer.from_pretrained("fixtures/reward_nets/clip_tiny")
    mlp = head([16, 20, 12, 8, 6])
    state = torch.load("fixtures/reward_nets/aesthetic_head_tiny.pth", weights_only=True)
    mlp.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
    hps = CLIP(**CONFIG).eval()
    hps.load_state_dict(torch.load("fixtures/openclip/hps_tiny.pt", weights_only=False)["state_dict"])
    hps.float()
    hps_tokens = open_clip.get_tokenizer("ViT-H-14")
    image_reward = tiny_model()
    image_reward.load_state_dict(torch.load("fixtures/image_reward/image_reward_tiny.pt"), strict=False)

    prompts = [PROMPTS[i % 2] for i in range(args.batch)]
    images = torch.rand(args.batch, 3, args.side, args.side)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    size = clip.config.vision_config.image_size

    def clip_pixels(x):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        return (x - mean) / std

    def unit(x):
        return x / x.norm(dim=-1, keepdim=True)

    def aesthetic(x):
        return mlp(unit(clip.get_image_features(pixel_values=clip_pixels(x)))).squeeze(-1)

    def clip_score(x):
        ids = tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        with torch.no_grad():
            text = unit(clip.get_text_features(**ids))
        return (unit(clip.get_image_features(pixel_values=clip_pixels(x))) * text).sum(-1)

    def hpsv2(x):
        with torch.no_grad():
            text = hps.encode_text(hps_tokens(prompts), normalize=True)
        pixels = torch.stack([F.normalize(resize_max_size(i, CONFIG["vision_cfg"]["image_size"]), MEAN, STD) for i in x])
        return (hps.encode_image(pixels, normalize=True) * text).sum(-1)

    def imagereward(x):
        return nabla_gfn_reward(image_reward, x, prompts)

    def timed(f):
        f()
        out = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            f()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    torch_ms = {}
    for name, fn in [
        ("aesthetic", aesthetic),
        ("clip_score", clip_score),
        ("hpsv2", hpsv2),
        ("imagereward", imagereward),
    ]:
        def score():
            with torch.no_grad():
                fn(images)

        def gradient():
            x = images.clone().requires_grad_(True)
            fn(x).sum().backward()

        torch_ms[f"{name}.score"] = timed(score)
        torch_ms[f"{name}.gradient"] = timed(gradient)

    out = subprocess.run(
        ["target/release/examples/reward_timing", str(args.batch), str(args.side), str(args.reps)],
        check=True, capture_output=True, text=True,
    ).stdout
    bench_ms = json.loads(out)
    print(f"batch {args.batch}, {args.side}x{args.side} images, medians of {args.reps} (ms)")
    print(f"{'work':<22}{'PyTorch':>10}{'bench':>10}{'bench/PyTorch':>15}")
    for key in torch_ms:
        t, b = statistics.median(torch_ms[key]), statistics.median(bench_ms[key])
        print(f"{key:<22}{t:>10.2f}{b:>10.2f}{b / t:>15.2f}")


if __name__ == "__main__":
    main()
