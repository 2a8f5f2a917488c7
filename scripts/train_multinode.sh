#!/usr/bin/env bash
# Train across nodes with the deepspeed launcher (passwordless ssh from this node to every host,
# same repo path and a shared filesystem for output_dir/checkpoints on all of them).
#   scripts/train_multinode.sh HOSTFILE RECIPE [DEEPSPEED_JSON] [key=value ...]
#   scripts/train_multinode.sh scripts/hostfile.example recipes/dapo_math.yaml recipes/deepspeed/zero3.json
# HOSTFILE lines: "<hostname> slots=<gpus>" (see scripts/hostfile.example). Run it on the first host.
set -euo pipefail
hostfile=${1:?usage: scripts/train_multinode.sh HOSTFILE RECIPE [DEEPSPEED_JSON] [key=value ...]}
recipe=${2:?usage: scripts/train_multinode.sh HOSTFILE RECIPE [DEEPSPEED_JSON] [key=value ...]}
shift 2
zero=recipes/deepspeed/zero3.json
if [[ $# -gt 0 && $1 == *.json ]]; then zero=$1; shift; fi
exec deepspeed --hostfile "$hostfile" --master_addr "${MASTER_ADDR:-$(hostname)}" --master_port "${MASTER_PORT:-29500}" \
  --no_local_rank --module rl_reason train --config "$recipe" \
  model.device=cuda distributed.engine=deepspeed distributed.deepspeed_config="$zero" "$@"
