"""The generative moment matching network's loss (Li et al. 2015).

Li, Swersky & Zemel (2015), "Generative moment matching networks" (ICML),
§3; *Deep Learning* §20.10.5. A generator x̃ = G(z), z ~ p(z), is trained,
with no second network, to make the maximum mean discrepancy between a
batch of data {x_i} (n of them) and a batch of samples {x̃_j} (m of them)
small:

  MMD²_b = 1/n² Σ_{i,i'} k(x_i, x_i') − 2/(nm) Σ_{i,j} k(x_i, x̃_j)
           + 1/m² Σ_{j,j'} k(x̃_j, x̃_j')                   (their Eq. 2–3)

with a mixture of Gaussian kernels (their §3, "we found it useful to use a
mixture of kernels")

  k(x, y) = Σ_q exp(−‖x − y‖² / (2 σ_q)),

where σ_q is a variance: the authors' code (yujiali/gmmn,
`GaussianKernelMmdLoss`) divides by 2σ, with σ ∈ {2, 5, 10, 20, 40, 80}
for MNIST pixels in [0, 1] (`LI2015_MNIST_VARIANCES`) and σ = 1 for the
32 sigmoid units of their autoencoder's code. These are the `variance`
(ℓ²) of `objectives.mmd.gaussian`. As the paper does, the loss is the
square root √MMD²_b, which "tends to give larger gradients" near the
optimum (their §3.1 and the code's `SqrtGaussianKernelMmdLoss`):
d√M = dM / (2√M), the MMD² gradient scaled up as the MMD² shrinks.
`sqrt=False` minimizes MMD²_b itself. The distances come from one matrix
product (`mmd.squared_distances_by_products`): for 784 pixels and the
paper's batches of 1000 the exact differences would be an [n, m, 784]
intermediate, and the kernels' widths (σ ≥ 1) dwarf the product's rounding. The noise is uniform on [−1, 1]^k, the
authors' code's `sample_hiddens`; 'normal' draws N(0, I) instead.

With several devices, each device computes the loss on its own shard of
the batch and the step averages the gradients: the mean of per-shard
√MMD²_b, each from a smaller batch.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import mmd
from aefamily.objectives.checks import check_values

# σ_q (variances, ℓ²) of Li et al. 2015's code for MNIST pixels in [0, 1].
LI2015_MNIST_VARIANCES = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
NOISES = ('uniform', 'normal')
# Below this, √MMD²_b is taken at the floor: its gradient 1/(2√M) would be
# unbounded at 0 (the authors' code adds 1e-10 to 2√M for the same reason).
_SQRT_FLOOR = 1e-12


def draw_noise(rng: jax.Array, num: int, noise_dim: int,
               noise: str = 'uniform') -> jax.Array:
  """The generator's input z: [num, noise_dim], uniform on [−1, 1] (Li et
  al. 2015's code) or standard normal.

  Raises:
    ValueError: for an unknown noise, or num or noise_dim < 1.
  """
  if noise not in NOISES:
    raise ValueError(f'noise must be one of {NOISES}, got {noise!r}')
  if num < 1 or noise_dim < 1:
    raise ValueError(f'need num >= 1 and noise_dim >= 1, got {num} and '
                     f'{noise_dim}')
  if noise == 'uniform':
    return jax.random.uniform(rng, (num, noise_dim), minval=-1.0, maxval=1.0)
  return jax.random.normal(rng, (num, noise_dim))


def gmmn_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array, *,
              model: Any,
              kernel_variances: tuple[float, ...] = LI2015_MNIST_VARIANCES,
              noise: str = 'uniform', num_samples: int = 0,
              sqrt: bool = True) -> tuple[jax.Array, LossAux]:
  """The GMMN loss of a batch: √MMD²_b(data, G(z)) (Li et al. 2015, §3).

  Args:
    params: the variables of a `models.gmmn.Generator`.
    batch: {'image': [B, D]}, B ≥ 2: data x in data space, or the codes
      h = E(x) of an autoencoder for GMMN+AE (`families.gmmn` prepares
      them). Values must be finite.
    rng: draws the noise z of the m samples.
    model: the generator (its noise_dim and output_dim = D).
    kernel_variances: the σ_q of the kernel mixture, in squared units of x
      (`LI2015_MNIST_VARIANCES` for pixels in [0, 1]).
    noise: 'uniform' on [−1, 1]^k (the paper's) or 'normal'.
    num_samples: m, the generated batch; 0 for m = B (the paper's: 1000
      and 1000).
    sqrt: minimize √MMD²_b (the paper's) rather than MMD²_b.

  Returns:
    (loss, aux): loss √MMD²_b or MMD²_b (dimensionless); aux.metrics:
    'mmd2' (MMD²_b, the biased estimate the loss uses) and 'mmd' (its
    square root), both dimensionless.

  Raises:
    ValueError: for a batch that is not [B, D] with B ≥ 2 and D the
      generator's output size, or holds a NaN or ±inf (when concrete), an
      unknown noise, num_samples of 1 or < 0, or a variance ≤ 0.
  """
  x = batch['image']
  if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] != model.output_dim:
    raise ValueError(f"batch['image'] must be [B, {model.output_dim}] with "
                     f'B >= 2 (the MMD compares two batches), got shape '
                     f'{x.shape}')
  check_values(x, "batch['image']")
  if num_samples == 1 or num_samples < 0:
    raise ValueError(f'num_samples must be 0 (the batch size) or >= 2, got '
                     f'{num_samples}')
  m = num_samples or x.shape[0]
  kernel = functools.partial(mmd.gaussian, variance=kernel_variances)
  samples = model.apply(params, draw_noise(rng, m, model.noise_dim, noise))
  mmd2 = mmd.mmd_biased(x, samples, kernel,
                        distances=mmd.squared_distances_by_products)
  root = jnp.sqrt(jnp.maximum(mmd2, _SQRT_FLOOR))
  return (root if sqrt else mmd2), LossAux(metrics={'mmd2': mmd2, 'mmd': root})
