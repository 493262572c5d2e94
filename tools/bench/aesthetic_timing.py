"""The aesthetic reward as DDPO's and DAG's code score it with transformers, for timing against
`bench score --reward aesthetic` on the same folder and the same (random, full-size) networks:
CLIPImageProcessor, CLIP ViT-L/14's image features, L2 normalisation, the LAION head; `file,score`
CSV on stdout. Batches of 8, as `bench score` takes them.

    python tools/bench/aesthetic_timing.py --make DIR N   # a random ViT-L/14 (DIR/clip-l14),
                                                          # a random head (DIR/head.pth) and
                                                          # DIR/images{1,N}/: 1 and N 512² PNGs
    python tools/bench/aesthetic_timing.py DIR/clip-l14 DIR/head.pth DIR/imagesN > scores.csv

Run in the fixtures venv (tools/fixtures/requirements.txt: torch 2.5.1, transformers 4.46.3).
"""

import pathlib
import sys

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

sys.path.insert(0, "tools/fixtures")
from make_reward_nets import head as head_of  # noqa: E402

BATCH = 8


def head() -> torch.nn.Sequential:
    """The LAION head's layout (layers.{0,2,4,6,7}), 768→1024→128→64→16→1."""
    return head_of([768, 1024, 128, 64, 16])


def make(root: pathlib.Path, n: int) -> None:
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        projection_dim=768,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        hidden_act="quick_gelu",
    )
    CLIPVisionModelWithProjection(config).save_pretrained(root / "clip-l14")
    torch.save({f"layers.{k}": v for k, v in head().state_dict().items()}, root / "head.pth")
    write_images(root, n)


def write_images(root: pathlib.Path, n: int) -> None:
    """root/images1/ and root/imagesN/: 1 and N smooth 512² PNGs."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float64)
    for count in sorted({1, n}):
        folder = root / f"images{count}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            f = rng.uniform(5, 40, 3)
            smooth = 127.5 + 127.5 * np.stack(
                [np.sin(x / f[0] + i), np.cos(y / f[1]), np.sin((x + y) / f[2])], axis=-1
            )
            Image.fromarray(smooth.round().astype(np.uint8)).save(folder / f"{i:03d}.png")


def score(clip: pathlib.Path, head_file: pathlib.Path, folder: pathlib.Path) -> None:
    model = CLIPVisionModelWithProjection.from_pretrained(clip).eval()
    mlp = head()
    mlp.load_state_dict({k.removeprefix("layers."): v for k, v in torch.load(head_file).items()})
    processor = CLIPImageProcessor()
    files = sorted(folder.glob("*.png"))
    print("file,score")
    with torch.no_grad():
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            images = [Image.open(p).convert("RGB") for p in chunk]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            embeds = model(pixel_values=pixels).image_embeds
            scores = mlp(embeds / embeds.norm(dim=-1, keepdim=True)).squeeze(-1)
            for p, s in zip(chunk, scores.tolist()):
                print(f"{p.name},{s}")


if __name__ == "__main__":
    if sys.argv[1] == "--make":
        make(pathlib.Path(sys.argv[2]), int(sys.argv[3]))
    else:
        score(*map(pathlib.Path, sys.argv[1:4]))
