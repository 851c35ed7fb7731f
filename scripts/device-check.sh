#!/usr/bin/env bash
# The GPU check, for when a device machine is lent (the tool library's `device` entry; under 8 minutes on one GPU):
# 1. the confined child sees CUDA and every reference scores full marks on its GPU profile (tests/test_training.py's
#    CUDA tests, through the real sandbox);
# 2. every exercise's GPU profile trains the reference on 3 seeds against its threshold;
# 3. a small class is graded with 1, 2 and 4 gradings per GPU.
# Run it from the repository root with the .venv built (scripts/setup-venv.sh); record what it prints.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.device_count())"
echo "== 1. the confined child on CUDA"
timeout 240 $PY -m pytest tests/test_training.py -q -p no:cacheprovider -n 0 -k cuda 2>&1 | tail -5
echo "== 2. GPU profiles, 3 seeds each"
timeout 240 $PY bench/calibrate_training.py --all --profile gpu --device cuda --seeds 3 2>&1 | grep -v "^\s*$" | tail -25
echo "== 3. a class with 1, 2 and 4 gradings per GPU"
timeout 120 $PY bench/class_throughput.py --exercise cnn_attention --students 8 --device cuda --gpu-slots 1 2 4 2>&1 | tail -6
