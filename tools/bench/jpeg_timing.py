"""The JPEG rewards' work as DDPO's code does it with Pillow, for timing against
`bench score --reward jpeg_incompressibility` on the same folder: read each image, ×255/round/
clamp to uint8 (a no-op round trip for PNG input), save as JPEG at quality 95 into memory, print
`file,score` (size in kB).

    python tools/bench/jpeg_timing.py --make DIR      # 64 random-ish 512×512 PNGs, seeded
    python tools/bench/jpeg_timing.py DIR > scores.csv
"""

import io
import pathlib
import sys

import numpy as np
from PIL import Image


def make(folder: pathlib.Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float64)
    for i in range(64):
        f = rng.uniform(5, 40, 3)
        smooth = 127.5 + 127.5 * np.stack(
            [np.sin(x / f[0] + i), np.cos(y / f[1]), np.sin((x + y) / f[2])], axis=-1
        )
        pixels = (smooth + rng.normal(0, 8 * (i % 4), smooth.shape)).clip(0, 255)
        Image.fromarray(pixels.round().astype(np.uint8)).save(folder / f"{i:03d}.png")


def score(folder: pathlib.Path) -> None:
    print("file,score")
    for path in sorted(folder.glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        pixels = (image * 255).round().clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
        print(f"{path.name},{buffer.tell() / 1000}")


if __name__ == "__main__":
    if sys.argv[1] == "--make":
        make(pathlib.Path(sys.argv[2]))
    else:
        score(pathlib.Path(sys.argv[1]))
