#!/usr/bin/env bash
# Usage: tools/dist_launch.sh SCRIPT NUM_PROCESSES [SCRIPT arguments]
# Runs tools/SCRIPT in NUM_PROCESSES processes per node with torch.distributed.run, as
# MMPretrain's dist scripts do. Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT.
# Without GPUs the processes run on CPU with the gloo backend.
# PYTHON: the interpreter that runs the processes (default: python on PATH).
set -euo pipefail
if (( $# < 2 )); then
    echo "usage: $0 SCRIPT NUM_PROCESSES [SCRIPT arguments]" >&2
    exit 2
fi
SCRIPT=$1
GPUS=$2
if [[ ! $GPUS =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: NUM_PROCESSES must be a positive integer, got '$GPUS'" >&2
    exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" \
    "${@:3}" \
    --launcher pytorch
