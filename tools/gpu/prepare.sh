#!/bin/bash
# Builds, here, what one GPU session's checks (tools/gpu/check.sh) need, into .gpu-kit/: the
# device machine has no Rust toolchain and reaches no registry, and its Python image has torch,
# transformers and peft but not diffusers. So: `bench` and the UNet timing example built with
# `--features cuda` (stripped and xz-compressed: the tree that travels is capped at 64 MiB),
# and diffusers' wheel (with the PyTorch side of the timing in mind). `.gpu-kit/` is ignored
# through .git/info/exclude, so it travels only when a run names it in `carry`.
#
#   bash tools/gpu/prepare.sh        # ~15 min from a cold target/ on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .git/info
grep -qx '/.gpu-kit/' .git/info/exclude 2>/dev/null || echo '/.gpu-kit/' >> .git/info/exclude
cargo build --release -p bench --features cuda --bin bench --example unet_timing
rm -rf .gpu-kit
mkdir -p .gpu-kit/bin
strip -o .gpu-kit/bin/bench target/release/bench
strip -o .gpu-kit/bin/unet_timing target/release/examples/unet_timing
tar -C .gpu-kit -cJf .gpu-kit/bin.tar.xz bin
rm -r .gpu-kit/bin
# Python 3.12 on the device (its KINDS.md); diffusers is pure Python, its needs are there.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    -d .gpu-kit "${DIFFUSERS:-diffusers}"
git rev-parse HEAD > .gpu-kit/commit
du -sh .gpu-kit
ls -l .gpu-kit
