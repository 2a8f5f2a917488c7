#!/usr/bin/env bash
# Train on the GPUs of this machine with DeepSpeed ZeRO (one process per GPU).
#   scripts/train_gpu.sh RECIPE [DEEPSPEED_JSON] [key=value ...]
#   GPUS=8 scripts/train_gpu.sh recipes/dapo_math.yaml recipes/deepspeed/zero2.json rollout.engine=vllm
# GPUS defaults to 1; DEEPSPEED_JSON to recipes/deepspeed/zero2.json (zero1/2/3[_offload].json).
# train.prompts_per_step is the global batch: each GPU rolls out prompts_per_step / GPUS prompts.
set -euo pipefail
recipe=${1:?usage: scripts/train_gpu.sh RECIPE [DEEPSPEED_JSON] [key=value ...]}
shift
zero=recipes/deepspeed/zero2.json
if [[ $# -gt 0 && $1 == *.json ]]; then zero=$1; shift; fi
exec deepspeed --num_gpus "${GPUS:-1}" --master_port "${MASTER_PORT:-29500}" --no_local_rank \
  --module rl_reason train --config "$recipe" \
  model.device=cuda distributed.engine=deepspeed distributed.deepspeed_config="$zero" "$@"
