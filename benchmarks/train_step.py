r"""Speed of the generic train step, against this machine's float32 matmul peak.

  python -m benchmarks.train_step --family=vae --batch_size=100

Prints examples/s of the jitted, pmapped step at the IWAE paper's
one-stochastic-layer architecture (784-200-200-50), its achieved GFLOP/s
(XLA's own FLOP count of the compiled step divided by the measured time),
that figure as a share of the measured matmul peak, and the peak resident
memory of the process.
"""

import resource
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from flax import jax_utils

from configs import binarized_mnist_iwae, binarized_mnist_vae
from input_pipeline import Split
from training import experiment
from training.step import make_train_step

_FAMILY = flags.DEFINE_enum('family', 'vae', ['vae', 'iwae'],
                            'vae (K=1, analytic KL) or iwae (K=5).')
_BATCH = flags.DEFINE_integer('batch_size', 100, 'Global batch size.')
_STEPS = flags.DEFINE_integer('steps', 2000, 'Timed steps (after as many untimed).')
_MATMUL = flags.DEFINE_integer('matmul_size', 2048,
                               'n of the n×n float32 matmul for the peak.')

CONFIGS = {'vae': binarized_mnist_vae, 'iwae': binarized_mnist_iwae}


def time_call(fn, *args, repeats: int) -> float:
  """Seconds per call, blocking on the result.

  As many untimed calls come first: the first few hundred steps after
  compilation run several times slower on CPU.
  """
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  start = time.perf_counter()
  for _ in range(repeats):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / repeats


def matmul_peak_gflops(n: int) -> float:
  """Measured GFLOP/s of an n×n by n×n float32 matmul (2n³ FLOPs)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  seconds = time_call(jax.jit(jnp.dot), a, a, repeats=20)
  return 2 * n ** 3 / seconds / 1e9


def step_flops(step, *args) -> float:
  """XLA's FLOP count of one compiled call (all local devices together)."""
  cost = step.lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost['flops'])


def main(argv):
  del argv
  config = CONFIGS[_FAMILY.value].get_config()
  config.batch_size = _BATCH.value
  devices = jax.local_device_count()
  experiment.validate_config(config, devices)
  rng = np.random.default_rng(0)
  images = (rng.random((config.batch_size, 784)) < 0.13).astype(np.float32)
  split = Split(images=images, labels=None, image_shape=(28, 28), binary=True)
  family, model, state = experiment.create_state(config, split, 10_000)
  step = make_train_step(family.build_loss(config, model))
  batch = {'image': images.reshape(devices, -1, 784)}
  key = jax.random.PRNGKey(0)
  replicated = jax_utils.replicate(state)
  # The step donates its input state, so feed each output back in.
  holder = [replicated]

  def run(batch, key):
    holder[0], metrics = step(holder[0], batch, key)
    return metrics

  flops = step_flops(step, replicated, batch, key) * devices
  seconds = time_call(run, batch, key, repeats=_STEPS.value)
  peak = matmul_peak_gflops(_MATMUL.value)
  achieved = flops / seconds / 1e9
  rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f'{_FAMILY.value} (K={config.num_samples}) train step, batch '
        f'{config.batch_size}, {devices} device(s), '
        f'{jax.devices()[0].device_kind}:')
  print(f'  {config.batch_size / seconds:,.0f} examples/s '
        f'({seconds * 1e3:.2f} ms/step)')
  print(f'  {flops / 1e6:.1f} MFLOP/step -> {achieved:.1f} GFLOP/s')
  print(f'  float32 matmul peak ({_MATMUL.value}^3): {peak:.1f} GFLOP/s; '
        f'step reaches {100 * achieved / peak:.1f}% of it')
  print(f'  peak RSS {rss_mib:.0f} MiB')


if __name__ == '__main__':
  app.run(main)
