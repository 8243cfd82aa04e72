"""The regularized (deterministic) autoencoder, RAE (Ghosh et al. 2020).

Ghosh, Sajjadi, Vergari, Black & Schölkopf (2020), "From Variational to
Deterministic Autoencoders", Eq. 11: a deterministic encoder z = E(x) and
decoder D, trained on

  L_RAE = ‖x − D(E(x))‖² + β · ½‖z‖² + λ · L_REG,

the reconstruction, a bound on the codes' size in place of the VAE's KL,
and a regularizer of the decoder in place of the VAE's noise injection:

* 'l2' (RAE-L2): ‖θ_D‖², the sum of squares of the decoder's weights —
  its dense and convolution kernels, not its biases (Tikhonov
  regularization, the small-noise limit of noise injection, which
  smooths D through its kernels; a bias moves D's output without changing
  its slope, and weight decay leaves biases alone, *Deep Learning* §7.1);
* 'gradient' (RAE-GP): ‖∇_z D(z)‖² at z = E(x), here the squared
  Frobenius norm of the decoder's Jacobian Σ_{i,j} (∂D_i/∂z_j)², the
  expected squared change of D's output per unit of isotropic noise added to
  z, which is what the penalty stands in for (§3); computed exactly with
  one forward-mode pass per code dimension (`jax.jacfwd`);
* 'none' (RAE): the code penalty alone.

It has no prior to sample from: new samples decode draws of a density
fitted to the training codes after training (ex-post density estimation,
§4; `families.rae`).
"""

from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images

DECODER_PENALTIES = ('none', 'l2', 'gradient')


def decoder_jacobian_norm(params: Any, z: jax.Array, *,
                          model: Any) -> jax.Array:
  """‖∂E[x | z]/∂z‖²_F for each code: [B, d] -> [B].

  The decoder's output here is the mean of p(x | z) (`reconstruction.mean()`).
  """
  def mean_of(code):
    return model.apply(params, code, method=model.decode).mean()
  jacobians = jax.vmap(jax.jacfwd(mean_of))(z)          # [B, D, d]
  return jnp.sum(jnp.square(jacobians), axis=(-2, -1))


def decoder_weight_norm(params: Any) -> jax.Array:
  """‖θ_D‖², RAE-L2's regularizer: the sum of the squares of every kernel
  (dense or convolution) of the decoder, biases excluded; a scalar."""
  leaves = jax.tree_util.tree_flatten_with_path(
      params['params']['decoder'])[0]
  return sum((jnp.sum(jnp.square(w)) for path, w in leaves
              if getattr(path[-1], 'key', None) == 'kernel'),
             jnp.zeros(()))


def rae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array, *,
             model: Any, code_weight: float = 1e-4,
             decoder_penalty: str = 'gradient',
             penalty_weight: float = 1e-2) -> tuple[jax.Array, LossAux]:
  """The RAE loss of a batch (Ghosh et al. 2020, Eq. 11), its batch mean.

  Args:
    params: the variables of a `models.code_shaping.Autoencoder`.
    batch: {'image': [B, D]}.
    rng: unused (the RAE is deterministic); the shared signature.
    model: the module.
    code_weight: β ≥ 0, the weight of ½‖z‖².
    decoder_penalty: 'none', 'l2' (the decoder's kernels, not its biases)
      or 'gradient' (see the module docstring).
    penalty_weight: λ ≥ 0, the weight of the decoder's regularizer.

  Returns:
    (loss, aux); aux.metrics: 'reconstruction' (‖x − D(E(x))‖² per
    example), 'code_norm' (½‖z‖²), 'decoder_penalty'.

  Raises:
    ValueError: for a batch of the wrong shape, an unknown penalty, or a
      negative weight.
  """
  del rng
  if decoder_penalty not in DECODER_PENALTIES:
    raise ValueError(f'decoder_penalty must be one of {DECODER_PENALTIES}, '
                     f'got {decoder_penalty!r}')
  if code_weight < 0 or penalty_weight < 0:
    raise ValueError('code_weight and penalty_weight must be >= 0, got '
                     f'{code_weight} and {penalty_weight}')
  x = batch['image']
  check_images(x, model.data_dim,
               unit_interval=model.likelihood != 'gaussian')
  z, reconstruction = model.apply(params, x)
  squared = jnp.mean(jnp.sum(jnp.square(x - reconstruction.mean()), -1))
  code_norm = jnp.mean(0.5 * jnp.sum(jnp.square(z), -1))
  if decoder_penalty == 'l2':
    penalty = decoder_weight_norm(params)
  elif decoder_penalty == 'gradient':
    penalty = jnp.mean(decoder_jacobian_norm(params, z, model=model))
  else:
    penalty = jnp.zeros(())
  loss = squared + code_weight * code_norm + penalty_weight * penalty
  return loss, LossAux(metrics={'reconstruction': squared,
                                'code_norm': code_norm,
                                'decoder_penalty': penalty})
