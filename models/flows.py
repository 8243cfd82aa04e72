"""Normalizing flows for a VAE's posterior: planar and radial flows (Rezende
& Mohamed 2015) and inverse autoregressive flow (Kingma et al. 2016).

A flow turns a sample z_0 ~ q_0(z | x) into z_T = f_T ∘ … ∘ f_1(z_0) and
keeps its density by the change of variables (Rezende & Mohamed, Eq. 7):

  log q_T(z_T | x) = log q_0(z_0 | x) − Σ_t log |det ∂f_t / ∂z_{t−1}|.

Each step maps (z [..., d], context [..., C]) to (z', log |det| [...]). The
context is the encoder's last hidden layer, so the flow's parameters are
amortized over x, as in both papers: planar and radial steps read their
parameters from it through a dense map; IAF feeds it to each step's MADE.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.autoregressive import MADE
from aefamily.models.distributions import Normal
from aefamily.models.mlp import MLP

FLOWS = ('none', 'planar', 'radial', 'iaf')


class PlanarStep(nn.Module):
  """f(z) = z + û tanh(wᵀz + b) (Rezende & Mohamed 2015, Eq. 10).

  log |det| = log |1 + ûᵀψ(z)| with ψ(z) = (1 − tanh²(wᵀz + b)) w (Eq. 11–
  12). û = u + [m(wᵀu) − wᵀu] w / ‖w‖², m(a) = −1 + softplus(a), makes
  wᵀû ≥ −1, so f is invertible (their appendix A).
  """

  @nn.compact
  def __call__(self, z: jax.Array, context: jax.Array):
    d = z.shape[-1]
    params = nn.Dense(2 * d + 1, name='parameters')(context)
    u, w, b = params[..., :d], params[..., d:2 * d], params[..., 2 * d]
    wu = jnp.sum(w * u, axis=-1, keepdims=True)
    u_hat = u + (jax.nn.softplus(wu) - 1 - wu) * w / (
        jnp.sum(w * w, axis=-1, keepdims=True) + 1e-8)
    t = jnp.tanh(jnp.sum(w * z, axis=-1) + b)                        # [...]
    psi = (1 - t ** 2)[..., None] * w
    log_det = jnp.log(jnp.abs(1 + jnp.sum(u_hat * psi, axis=-1)))
    return z + u_hat * t[..., None], log_det


class RadialStep(nn.Module):
  """f(z) = z + β h(α, r)(z − z_0), r = ‖z − z_0‖, h = 1 / (α + r)
  (Rezende & Mohamed 2015, Eq. 14).

  log |det| = (d − 1) log(1 + βh) + log(1 + βh + βh′r), h′ = −h². α =
  softplus(α̂) > 0 and β = −α + softplus(β̂) ≥ −α make f invertible
  (their appendix A).
  """

  @nn.compact
  def __call__(self, z: jax.Array, context: jax.Array):
    d = z.shape[-1]
    params = nn.Dense(d + 2, name='parameters')(context)
    center = params[..., :d]
    alpha = jax.nn.softplus(params[..., d])
    beta = -alpha + jax.nn.softplus(params[..., d + 1])
    diff = z - center
    r = jnp.sqrt(jnp.sum(diff ** 2, axis=-1) + 1e-12)                 # [...]
    h = 1 / (alpha + r)
    log_det = ((d - 1) * jnp.log1p(beta * h)
               + jnp.log1p(beta * h - beta * h ** 2 * r))
    return z + (beta * h)[..., None] * diff, log_det


class IAFStep(nn.Module):
  """One step of inverse autoregressive flow (Kingma et al. 2016, Alg. 1):

    [m, s] = MADE(z, context),  σ = sigmoid(s),  z' = σ ⊙ z + (1 − σ) ⊙ m,

  with m_d, s_d depending on z_{<d} only, so ∂z'/∂z is triangular with
  diagonal σ and log |det| = Σ_d log σ_d. The gate's bias starts at
  `gate_bias` (σ ≈ 0.88 for 2), so each step starts near the identity, as
  the paper advises. `reverse` runs the step in the ordering d−1, …, 0:
  alternate steps reverse it, so that every coordinate can depend on
  every other.

  Attributes:
    hidden: the MADE's hidden widths.
    reverse: use the reversed ordering.
    gate_bias: the initial bias of s.
  """
  hidden: Sequence[int] = (200,)
  reverse: bool = False
  gate_bias: float = 2.0

  @nn.compact
  def __call__(self, z: jax.Array, context: jax.Array):
    d = z.shape[-1]
    if self.reverse:
      z = z[..., ::-1]
    bias = jnp.concatenate([jnp.zeros(d), jnp.full(d, self.gate_bias)])
    m, s = jnp.moveaxis(MADE(
        data_dim=d, hidden=tuple(self.hidden), activation='elu',
        outputs_per_dim=2, output_bias_init=lambda key, shape: bias,
        name='made')(z, 0, context), -2, 0)
    gate = jax.nn.sigmoid(s)
    z = gate * z + (1 - gate) * m
    if self.reverse:
      z = z[..., ::-1]
    return z, jnp.sum(jax.nn.log_sigmoid(s), axis=-1)


class Flow(nn.Module):
  """T steps of one kind: (z_0 [..., d], context) -> (z_T, Σ_t log |det|).

  Attributes:
    kind: 'planar', 'radial' or 'iaf'.
    num_steps: T ≥ 1.
    iaf_hidden: the hidden widths of each IAF step's MADE.
  """
  kind: str
  num_steps: int
  iaf_hidden: Sequence[int] = (200,)

  @nn.compact
  def __call__(self, z: jax.Array, context: jax.Array):
    if self.kind not in _STEPS or self.num_steps < 1:
      raise ValueError(f'a flow needs a kind in {sorted(_STEPS)} and >= 1 '
                       f'step, got {self.kind!r} with {self.num_steps}')
    log_det = jnp.zeros(z.shape[:-1])
    for t in range(self.num_steps):
      step = _STEPS[self.kind](self, t)
      z, step_log_det = step(z, context)
      log_det = log_det + step_log_det
    return z, log_det


# Flow.kind -> the module of step t.
_STEPS = {
    'planar': lambda flow, t: PlanarStep(name=f'step_{t}'),
    'radial': lambda flow, t: RadialStep(name=f'step_{t}'),
    'iaf': lambda flow, t: IAFStep(flow.iaf_hidden, reverse=t % 2 == 1,
                                   name=f'step_{t}'),
}


class ContextGaussianHead(nn.Module):
  """`mlp.GaussianHead` that also returns its last hidden layer, the
  context of a flow: h -> (N(μ(h), diag(σ²(h))), features)."""
  hidden: Sequence[int]
  features: int
  activation: str = 'tanh'

  @nn.compact
  def __call__(self, h: jax.Array):
    h = MLP(self.hidden, self.activation)(h)
    return (Normal(nn.Dense(self.features, name='loc')(h),
                   nn.Dense(self.features, name='log_var')(h)), h)
