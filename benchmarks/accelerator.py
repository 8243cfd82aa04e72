r"""The accelerator rows of docs/performance.md in one short run.

Prepared on a CPU, so that a few minutes of a lent GPU measure every row:

  python -m aefamily.benchmarks.accelerator --workdir=runs/accelerator

1. what the machine has (devices, versions): WORKDIR/machine.txt;
2. the VAE and IWAE train steps at batches 100 and 1,000, at 1, 10 and 100
   steps per call, in float32 and bfloat16, against compiled PyTorch on
   the same GPU where torch sees one, and IWAE-5000 evaluation speed on
   1,000 test images (`benchmarks/performance.py`): WORKDIR/performance/;
3. the whole 10-epoch run, its training loop against the isolated step
   (`benchmarks/whole_run.py`; on an accelerator the split lives on the
   devices and a call scans an epoch): WORKDIR/whole_run/. It needs
   binarized MNIST where the data rule finds it (docs/data.md; e.g.
   $AEFAMILY_DATA_DIR) and is skipped, saying so, without it.
"""

import importlib.util
import os
import platform
import subprocess
import sys

from absl import app
from absl import flags
import jax

from aefamily.training import files

_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the results go.',
                               required=True)

PERFORMANCE = ['--families=vae,iwae', '--batch_sizes=100,1000',
               '--steps_per_call=1,10,100', '--precisions=float32,bfloat16',
               '--iwae_examples=1000', '--chain_steps=0', '--rounds=3']
WHOLE_RUN = ['--epochs=10', '--repeats=2', '--peer=false']


def machine() -> str:
  """One line per framework: versions and the devices it sees."""
  lines = [f'python {platform.python_version()} | jax {jax.__version__} | '
           f'backend {jax.default_backend()} | {jax.devices()}']
  if importlib.util.find_spec('torch'):
    import torch  # pylint: disable=g-import-not-at-top
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    lines.append(f'torch {torch.__version__} | cuda {gpu}')
  else:
    lines.append('torch not installed: no PyTorch column')
  if jax.default_backend() == 'cpu':
    lines.append('JAX sees no accelerator: these are CPU rows')
  return '\n'.join(lines)


def has_binarized_mnist() -> bool:
  """Whether the data rule (docs/data.md) finds binarized MNIST."""
  from aefamily import input_pipeline  # pylint: disable=g-import-not-at-top
  try:
    input_pipeline.load_split('binarized_mnist', 'test')
  except (OSError, ValueError):
    return False
  return True


def run_module(name: str, args: list[str], workdir: str) -> None:
  """python -m aefamily.benchmarks.NAME ARGS --workdir=WORKDIR; raises
  subprocess.CalledProcessError if it fails."""
  subprocess.run([sys.executable, '-m', f'aefamily.benchmarks.{name}', *args,
                  f'--workdir={workdir}'], check=True)


def run_all(workdir: str, performance_args: list[str] = PERFORMANCE,
            whole_run_args: list[str] | None = WHOLE_RUN) -> None:
  """Writes machine.txt, performance/ and (with whole_run_args, where the
  data are found) whole_run/ into workdir."""
  os.makedirs(workdir, exist_ok=True)
  described = machine()
  print(described, flush=True)
  files.write_atomic(os.path.join(workdir, 'machine.txt'), described + '\n')
  run_module('performance', performance_args,
             os.path.join(workdir, 'performance'))
  if whole_run_args is None:
    return
  if has_binarized_mnist():
    run_module('whole_run', whole_run_args, os.path.join(workdir, 'whole_run'))
  else:
    print('whole run skipped: binarized_mnist not found (docs/data.md)')


def main(argv):
  del argv
  run_all(_WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
