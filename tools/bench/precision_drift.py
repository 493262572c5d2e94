"""How far diffusers' UNet in bf16 / f16 drifts from f32 on an SD folder (the tiny fixture by
default): the relative L2 distance of unguided ε, over random latents and the text encoder's
states of two prompts, at the timesteps bench's drift checks use (981: the first of 50 DDIM
steps, harness/examples/precision_drift.rs; 401: the 6th of 10,
envs/tests/samplers/sd_precision.rs). What bench's own drift is to be compared with: the same
rounding, not the same numbers (the inputs are drawn apart).

    /work/venv-fixtures/bin/python tools/bench/precision_drift.py [--model fixtures/sd_tiny]
"""

import argparse
import json

import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="fixtures/sd_tiny")
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args()
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet").eval()
    tok = CLIPTokenizer.from_pretrained(args.model, subfolder="tokenizer")
    enc = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder").eval()
    prompts = ["a photo of a cat", "an astronaut riding a horse"] * (args.batch // 2)
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length,
              truncation=True, return_tensors="pt").input_ids
    size = unet.config.sample_size
    for t in (981, 401):
        x = torch.randn(args.batch, unet.config.in_channels, size, size)
        ts = torch.full((args.batch,), t)
        with torch.no_grad():
            ctx = enc(ids)[0]
            ref = unet(x, ts, ctx).sample
            out = {"timestep": t, "batch": args.batch}
            for name, dtype in (("bf16", torch.bfloat16), ("f16", torch.float16)):
                half_unet = UNet2DConditionModel.from_pretrained(
                    args.model, subfolder="unet").eval().to(dtype)
                half_enc = CLIPTextModel.from_pretrained(
                    args.model, subfolder="text_encoder").eval().to(dtype)
                eps = half_unet(x.to(dtype), ts, half_enc(ids)[0]).sample.float()
                out[f"{name}_eps_rel_l2"] = float((eps - ref).norm() / ref.norm())
            print(json.dumps(out))


if __name__ == "__main__":
    main()
