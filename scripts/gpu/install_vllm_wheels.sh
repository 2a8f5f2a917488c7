#!/usr/bin/env bash
# Offline install of vLLM 0.24.0 for the GPU test machine (Python 3.12, torch 2.11.0+cu130,
# transformers 5.17 already installed; no internet there).
#
# Usage:  scripts/gpu/install_vllm_wheels.sh WHEEL_DIR [TARGET]      (TARGET defaults to /tmp/site)
#         export PYTHONPATH=TARGET
#
# WHEEL_DIR holds vllm-0.24.0-cp38-abi3-manylinux_2_28_x86_64.whl plus the wheels below. They are
# the pure runtime needs of `import vllm` + `LLM(...).generate` for a Llama model that the
# machine's image lacks (its package list: .library/device/KINDS.md); fetch them on a machine with
# PyPI access:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform manylinux_2_31_x86_64 --platform manylinux_2_24_x86_64 -d WHEEL_DIR \
#     vllm==0.24.0 $(sed -n 's/^# pin: //p' "$0")
#
# pin: pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5
# pin: typing-extensions==4.16.0 msgspec==0.22.0 pyzmq==27.3.0 cbor2==6.3.0 pybase64==1.5.1
# pin: cachetools==8.0.1 openai==2.54.0 distro==1.9.0 jiter==0.19.0 sniffio==1.3.1
# pin: openai-harmony==0.0.8 fastapi==0.136.3 starlette==1.10.0 partial-json-parser==0.2.1.1.post7
# pin: llguidance==1.7.6 xgrammar==0.2.6 apache-tvm-ffi==0.1.10 setproctitle==1.3.8 blake3==1.0.11
# pin: depyf==0.20.0 astor==0.8.1 dill==0.4.1
#
# Why these: vllm.entrypoints.llm imports pydantic, msgspec, zmq, cbor2 (config hashing),
# pybase64, cachetools, openai + openai_harmony (entrypoint types), fastapi/starlette (pooling
# IO processors), partial_json_parser (tool parsers), and evaluates llguidance/xgrammar type
# annotations at class definition, so those import eagerly too. xgrammar 0.2.6 is the oldest
# small (1.2 MB) wheel; it needs apache-tvm-ffi>=0.1.10 instead of vLLM's ==0.1.9 pin (that pin is
# for flashinfer, not installed here). openai<3 because openai 3 needs httpx2, which the image
# lacks. setproctitle/blake3/depyf/dill are imported lazily (process titles, multimodal hashing,
# compile debug dumps) and are tiny. Left out on purpose (vLLM falls back or imports them only
# for other features): flashinfer-python/-cubin, tilelang, nvidia-cutlass-dsl, quack-kernels,
# tokenspeed-mla, humming-kernels, nvidia-cudnn-frontend, fastsafetensors, lm-format-enforcer,
# outlines_core, mistral_common, compressed-tensors, anthropic, mcp, opentelemetry-*,
# prometheus-fastapi-instrumentator, model-hosting-container-standards, watchfiles, ijson,
# python-json-logger, diskcache, lark, jsonschema.
#
# The vLLM wheel may be the full 279 MB one or a trimmed copy (same file name) without
# vllm_flash_attn/_vllm_fa2_C.abi3.so, _moe_C_stable_libtorch.abi3.so, vllm-rs and the
# non-cp312 deep_gemm modules (144 MB): on Hopper vLLM uses FlashAttention 3, a dense Llama needs
# no MoE ops (vLLM only logs a warning) and vllm-rs is the optional Rust frontend. Trim with
#   zip -d vllm-0.24.0-*.whl vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so \
#     vllm/_moe_C_stable_libtorch.abi3.so vllm/vllm-rs 'vllm/third_party/deep_gemm/_C.cpython-31[0134]*'
set -euo pipefail
wheel_dir=${1:?usage: install_vllm_wheels.sh WHEEL_DIR [TARGET]}
target=${2:-/tmp/site}
shopt -s nullglob
wheels=("$wheel_dir"/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "install_vllm_wheels.sh: no .whl files in $wheel_dir" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$target" "${wheels[@]}"
PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" python3 -c \
    'import vllm, vllm.entrypoints.llm, pydantic, xgrammar; print("vllm", vllm.__version__, "from", vllm.__file__)'
