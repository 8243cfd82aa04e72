#!/bin/bash
# The accelerator rows of docs/performance.md in one short run, prepared on
# a CPU so that a few minutes of a lent GPU measure every row:
#
#   bash benchmarks/accelerator.sh OUTDIR
#
# 1. what the machine has (devices, versions);
# 2. the VAE and IWAE train steps at batches 100 and 1,000, at 1, 10 and 100
#    steps per call, in float32 and bfloat16, against compiled PyTorch on
#    the same GPU where torch sees one, and IWAE-5000 evaluation speed on
#    1,000 test images (benchmarks/performance.py);
# 3. the whole 10-epoch run with its training loop against the isolated step
#    (benchmarks/whole_run.py; on an accelerator the split lives on the
#    devices and a call scans an epoch).
# Run from the repository root. Without an installed aefamily the checkout
# is put on PYTHONPATH under that name.
set -euo pipefail
out=${1:?usage: bash benchmarks/accelerator.sh OUTDIR}
mkdir -p "$out"
if ! python -c 'import aefamily' 2>/dev/null; then
  pkg=$(mktemp -d)
  ln -s "$PWD" "$pkg/aefamily"
  export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}"
fi
python - <<'EOF' | tee "$out/machine.txt"
import importlib.util, platform
import jax
print('python', platform.python_version(), '| jax', jax.__version__,
      '| backend', jax.default_backend(), '|', jax.devices())
if importlib.util.find_spec('torch'):
  import torch
  print('torch', torch.__version__, '| cuda',
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
else:
  print('torch not installed: no PyTorch column')
if jax.default_backend() == 'cpu':
  print('WARNING: JAX sees no accelerator; these are CPU rows')
EOF
python -m aefamily.benchmarks.performance --families=vae,iwae \
    --batch_sizes=100,1000 --steps_per_call=1,10,100 \
    --precisions=float32,bfloat16 --iwae_examples=1000 --chain_steps=0 \
    --rounds=3 --workdir="$out/performance"
# The whole run reads binarized MNIST (config.data_dir's rule: set
# AEFAMILY_DATA_DIR to a folder holding binarized_mnist/).
if python -c "from aefamily import input_pipeline
input_pipeline.load_split('binarized_mnist', 'train')" 2>/dev/null; then
  python -m aefamily.benchmarks.whole_run --epochs=10 --repeats=2 \
      --peer=false --workdir="$out/whole_run"
else
  echo 'whole run skipped: binarized_mnist not found (set AEFAMILY_DATA_DIR)'
fi
