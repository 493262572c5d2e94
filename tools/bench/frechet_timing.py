"""The Fréchet distance at d = 2048 as pytorch-fid computes it (`np.mean`, `np.cov`,
`calculate_frechet_distance` with scipy's `sqrtm`), for timing against bench's route
(harness/examples/frechet_timing.rs) on the same features.

    python tools/bench/frechet_timing.py --make FILE [N]   # two random [N, 2048] f64 feature sets
    python tools/bench/frechet_timing.py FILE              # prints `FID: <value>`

In the fixtures venv plus `pip install pytorch-fid==0.3.0 scipy`.
"""

import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def make(path: str, n: int) -> None:
    rng = np.random.default_rng(0)
    d = 2048
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    feats = lambda: np.abs(rng.normal(size=(n, d)) @ mixing)  # noqa: E731  (ReLU-like, correlated)
    save_file({"a": torch.from_numpy(feats()), "b": torch.from_numpy(feats() * 1.05)}, path)


def main() -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    t = load_file(sys.argv[1])
    a, b = t["a"].numpy(), t["b"].numpy()
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    print(f"FID: {calculate_frechet_distance(*stats[0], *stats[1])}")


if __name__ == "__main__":
    if sys.argv[1] == "--make":
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
    else:
        main()
