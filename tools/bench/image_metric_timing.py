"""Images per second through the image metrics' networks in PyTorch, for timing against
`target/release/examples/image_metric_timing` on the same machine, same batch and threads:
pytorch-fid's `InceptionV3([3])` (resize to 299 and scaling included) or the dreamsim package's
ensemble `embed` (224² inputs, LoRA through peft as the package runs it), on seeded uniform
noise, after one warm-up batch; loading is not timed.

    python tools/bench/fid_timing.py --make DIR 0                 # DIR/inception.safetensors
    python tools/bench/image_metric_timing.py inception DIR/inception.safetensors N BATCH SIDE
    python tools/bench/image_metric_timing.py --make-dreamsim DIR  # full-size random ensemble
    python tools/bench/image_metric_timing.py dreamsim DIR N BATCH

In the fixtures venv (tools/fixtures/requirements.txt, dreamsim installed with --no-deps).
"""

import pathlib
import sys
import time

import torch

sys.path.insert(0, "tools/fixtures")


def timed(n: int, batch: int, side: int, forward) -> None:
    gen = torch.Generator().manual_seed(0)
    images = lambda k: torch.rand(k, 3, side, side, generator=gen)  # noqa: E731
    with torch.no_grad():
        forward(images(batch))
        t0 = time.perf_counter()
        total, done = 0.0, 0
        while done < n:
            k = min(batch, n - done)
            total += float(forward(images(k)).sum())
            done += k
    seconds = time.perf_counter() - t0
    print(f"{n} images in {seconds:.2f} s: {n / seconds:.2f} images/s (checksum {total:.3f}, "
          f"{torch.get_num_threads()} threads)")


def inception(weights: str, n: int, batch: int, side: int) -> None:
    from safetensors.torch import load_file

    import pytorch_fid.inception as fid

    state = load_file(weights)
    fid.load_state_dict_from_url = lambda *a, **k: state
    model = fid.InceptionV3([3]).eval()
    timed(n, batch, side, lambda x: model(x)[0].reshape(x.shape[0], -1))


def create_model(model_type: str, load_dir: str = "./models"):
    """`ViTExtractor.create_model` without downloads (DINO from the saved hub checkpoint)."""
    import dreamsim.feature_extraction.load_clip_as_dino as load_clip
    import dreamsim.feature_extraction.load_open_clip_as_dino as load_open_clip
    from dreamsim.feature_extraction.vision_transformer import vit_base

    if model_type == "dino_vitb16":
        model = vit_base(patch_size=16)
        model.load_state_dict(torch.load(pathlib.Path(load_dir) / "checkpoints" / "dino_vitbase16_pretrain.pth"))
        return model
    if model_type == "clip_vitb16":
        return load_clip.load_clip_as_dino(16, load_dir)
    return load_open_clip.load_open_clip_as_dino(16, load_dir)


def ensemble(folder: str):
    import dreamsim.feature_extraction.extractor as extractor
    from dreamsim.model import PerceptualModel

    extractor.ViTExtractor.create_model = staticmethod(create_model)
    return PerceptualModel(
        model_type="dino_vitb16,clip_vitb16,open_clip_vitb16",
        feat_type="cls,embedding,embedding",
        stride="16,16,16",
        lora=True,
        load_dir=folder,
        normalize_embeds=True,
        device="cpu",
    )


def make_dreamsim(root: pathlib.Path) -> None:
    from dreamsim.feature_extraction.vision_transformer import vit_base
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(vit_base(patch_size=16).state_dict(), root / "checkpoints" / "dino_vitbase16_pretrain.pth")
    for name in ("clip", "open_clip"):
        vit = vit_base(patch_size=16)
        vit.pos_drop = torch.nn.LayerNorm(768)
        state = dict(vit.state_dict())
        state["proj"] = torch.randn(768, 512) * 0.03
        torch.save({"state_dict": state}, root / f"{name}_vitb16_pretrain.pth.tar")
    model = get_peft_model(
        ensemble(str(root)),
        LoraConfig(r=16, lora_alpha=8, lora_dropout=0.3, bias="none", target_modules=["qkv"]),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    model.save_pretrained(str(root / "ensemble_lora"), safe_serialization=False)


def dreamsim(folder: str, n: int, batch: int) -> None:
    from peft import PeftModel

    model = PeftModel.from_pretrained(ensemble(folder), str(pathlib.Path(folder) / "ensemble_lora")).eval()
    timed(n, batch, 224, model.embed)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[0] == "--make-dreamsim":
        make_dreamsim(pathlib.Path(args[1]))
    elif args[0] == "inception":
        inception(args[1], int(args[2]), int(args[3]), int(args[4]))
    else:
        dreamsim(args[1], int(args[2]), int(args[3]))
