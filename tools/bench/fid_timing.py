"""`python -m pytorch_fid A B` with deterministic weights (tools/fixtures/make_inception.py's,
handed to its loader in place of the download), for timing against `bench fid A B --weights`
with the same weights on the same folders.

    python tools/bench/fid_timing.py --make DIR N   # DIR/a, DIR/b: N 512² PNGs each;
                                                    # DIR/inception.safetensors: the weights
    python tools/bench/fid_timing.py DIR            # prints `FID: <value>`

In the fixtures venv plus `pip install pytorch-fid==0.3.0 scipy`. pytorch-fid's command-line
defaults: batch 50, `num_workers` = min(8, CPUs).
"""

import os
import pathlib
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, "tools/fixtures")
from make_inception import fid_model_with_deterministic_weights  # noqa: E402


def make(root: pathlib.Path, n: int) -> None:
    from safetensors.torch import save_file

    import pytorch_fid.inception as fid

    fid_model_with_deterministic_weights()
    # The state dict under the checkpoint's names, as the patched loader hands it out.
    state = fid.load_state_dict_from_url(None)
    save_file({k: v.contiguous() for k, v in state.items()}, root / "inception.safetensors")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float64)
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            f = rng.uniform(5, 40, 3)
            smooth = 127.5 + 127.5 * np.stack(
                [np.sin(x / f[0] + i), np.cos(y / f[1]), np.sin((x + y) / f[2])], axis=-1
            )
            Image.fromarray(smooth.round().astype(np.uint8)).save(root / folder / f"{i:03d}.png")


def main(root: pathlib.Path) -> None:
    from pytorch_fid.fid_score import calculate_fid_given_paths

    fid_model_with_deterministic_weights()  # patches pytorch-fid's loader
    workers = min(8, len(os.sched_getaffinity(0)))
    value = calculate_fid_given_paths([str(root / "a"), str(root / "b")], 50, "cpu", 2048, workers)
    print(f"FID: {value}")


if __name__ == "__main__":
    if sys.argv[1] == "--make":
        make(pathlib.Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main(pathlib.Path(sys.argv[1]))
