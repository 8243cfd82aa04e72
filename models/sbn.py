"""Sigmoid belief networks with a matching inference network.

The generative model (*Deep Learning* Eq. 20.70; Neal 1992) is a directed
stack of Bernoulli layers, top first:

  p(h_L) = Π_i σ(b_i)^{h_i} σ(−b_i)^{1−h_i}
  p(h_{l−1} | h_l) = Bernoulli(σ(W_l h_l + c_l)),   h_0 = x,

and the inference network q(h | x) = Π_l q(h_l | h_{l−1}) runs the other
way, q(h_l | h_{l−1}) = Bernoulli(σ(V_l h_{l−1} + d_l)), as in NVIL
(Mnih & Gregor 2014, §5). "SBN 200-200-784" has latent_dims = (200, 200).
By default the layers are linear before the sigmoid, as in the NVIL and
MuProp papers. With `hidden` widths, every one of these maps is an MLP
instead: with one latent layer this is a VAE whose code is Bernoulli
(NVIL's "nonlinear SBN").

An optional input-dependent baseline b_ψ(x), an MLP with one tanh hidden
layer (NVIL uses 100 units), lives beside them; it is a control variate
and plays no part in the model. With `local_baselines`, every inference
layer above the first gets its own baseline b_l(h_{l−1}) of the same
shape, for NVIL's local learning signals (Mnih & Gregor 2014, §3.3).

Samples from q are drawn from given uniforms, so the model is a pure
function of (params, x, uniforms) and one draw can be replayed.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.mlp import MLP
from aefamily.objectives import densities
from aefamily.objectives.reinforce import straight_through_bernoulli


class SigmoidBeliefNet(nn.Module):
  """A sigmoid belief net p(x, h) with its inference network q(h | x).

  Attributes:
    data_dim: D, the size of x.
    latent_dims: (H_1, …, H_L), the latent layers bottom first.
    hidden: widths of the deterministic hidden layers inside each map;
      () makes every map linear.
    activation: of those hidden layers, a name in `models.mlp.ACTIVATIONS`.
    baseline_hidden: hidden units of NVIL's baseline b_ψ(x); 0 builds none.
    local_baselines: also build b_l(h_{l−1}) for the layers l ≥ 2.
    output_bias_init: initializer of the logits of p(x | h_1).
  """
  data_dim: int
  latent_dims: Sequence[int]
  hidden: Sequence[int] = ()
  activation: str = 'tanh'
  baseline_hidden: int = 100
  local_baselines: bool = False
  output_bias_init: Callable = nn.initializers.zeros_init()

  def setup(self):
    dims = (self.data_dim, *self.latent_dims)
    self.prior_logits = self.param('prior_logits',
                                   nn.initializers.zeros_init(),
                                   (self.latent_dims[-1],))
    # generative[l]: h_{l+1} -> logits of layer l (layer 0 is x).
    self.generative = [
        self._map(dims[l], f'generative_{l}',
                  self.output_bias_init if l == 0
                  else nn.initializers.zeros_init())
        for l in range(len(self.latent_dims))]
    # inference[l]: h_l -> logits of q(h_{l+1} | h_l) (h_0 is x).
    self.inference = [self._map(dims[l + 1], f'inference_{l}')
                      for l in range(len(self.latent_dims))]
    if self.baseline_hidden:
      self.baseline_layers = [nn.Dense(self.baseline_hidden), nn.Dense(1)]
      if self.local_baselines:
        self.upper_baselines = [
            nn.Sequential([nn.Dense(self.baseline_hidden), jnp.tanh,
                           nn.Dense(1)])
            for _ in self.latent_dims[1:]]

  def _map(self, features: int, name: str,
           bias_init: Callable = nn.initializers.zeros_init()) -> nn.Module:
    """Logits of one conditional: Dense, or an MLP of `hidden` then Dense."""
    if not self.hidden:
      return nn.Dense(features, bias_init=bias_init, name=name)
    return nn.Sequential([MLP(self.hidden, self.activation),
                          nn.Dense(features, bias_init=bias_init)], name=name)

  def noise_shapes(self, num_samples: int,
                   batch_size: int) -> list[tuple[int, ...]]:
    """Shapes of the uniforms `sample_posterior` takes: [K, B, H_l] per layer."""
    return [(num_samples, batch_size, h) for h in self.latent_dims]

  def sample_posterior(self, x: jax.Array, uniforms: Sequence[jax.Array], *,
                       straight_through: bool = False,
                       per_layer: bool = False):
    """h ~ q(h | x) layer by layer, with log q(h | x).

    Args:
      x: [B, D] binary data.
      uniforms: per layer, [K, B, H_l] uniform draws in [0, 1).
      straight_through: give each h_l the gradient of its probabilities
        σ(a) (biased; Bengio et al. 2013). Otherwise h carries no gradient:
        the score-function estimators differentiate log q instead.
      per_layer: return log q(h_l | h_{l−1}) for each layer, not the sum.

    Returns:
      (hs, log_q): hs is a list of [K, B, H_l] in {0, 1}, bottom first;
      log_q is [K, B], log q(h | x) in nats, or [L, K, B] per layer.
    """
    h, hs, log_qs = x, [], []
    for layer, u in zip(self.inference, uniforms):
      logits = layer(h)
      if straight_through:
        h = straight_through_bernoulli(logits, u)
      else:
        h = (u < jax.nn.sigmoid(logits)).astype(u.dtype)
      logits = jnp.broadcast_to(logits, h.shape)
      log_qs.append(densities.bernoulli_log_prob(logits, h))
      hs.append(h)
    log_qs = jnp.stack(log_qs)
    return hs, (log_qs if per_layer else jnp.sum(log_qs, 0))

  def log_joint(self, x: jax.Array, hs: Sequence[jax.Array], *,
                per_layer: bool = False) -> jax.Array:
    """log p(x, h) = log p(h_L) + Σ_l log p(h_{l−1} | h_l).

    Args:
      x: [B, D] binary data.
      hs: per layer, [K, B, H_l], bottom first.
      per_layer: return the terms log p(h_{l−1} | h_l), l = 1…L, with
        log p(h_L) added to the last, instead of their sum.

    Returns:
      [K, B] log-probabilities in nats, or [L, K, B] per layer.
    """
    top = hs[-1]
    below = [jnp.broadcast_to(x, (*top.shape[:-1], x.shape[-1])), *hs[:-1]]
    terms = [densities.bernoulli_log_prob(layer(h_above), h)
             for layer, h_above, h in zip(self.generative, hs, below)]
    terms[-1] = terms[-1] + densities.bernoulli_log_prob(
        jnp.broadcast_to(self.prior_logits, top.shape), top)
    terms = jnp.stack(terms)
    return terms if per_layer else jnp.sum(terms, 0)

  def input_baseline(self, x: jax.Array) -> jax.Array:
    """NVIL's input-dependent baseline b_ψ(x): [B, D] -> [B] (nats)."""
    hidden, out = self.baseline_layers
    return out(jnp.tanh(hidden(x)))[..., 0]

  def layer_baselines(self, x: jax.Array,
                      hs: Sequence[jax.Array]) -> jax.Array:
    """The baselines of the L local learning signals: [L, K, B] (nats).

    b_ψ(x) for the first inference layer and b_l(h_{l−1}) for layer l ≥ 2,
    each a function of the layer's input only (Mnih & Gregor 2014, §3.3).
    """
    first = jnp.broadcast_to(self.input_baseline(x), hs[0].shape[:-1])
    upper = [b(h)[..., 0] for b, h in zip(self.upper_baselines, hs[:-1])]
    return jnp.stack([first, *upper])

  def decode(self, layer: int, h_above: jax.Array) -> jax.Array:
    """Logits of p(h_{layer} | h_{layer+1}) (layer 0 is x): [..., H] -> [..., H']."""
    return self.generative[layer](h_above)

  def __call__(self, x: jax.Array, uniforms: Sequence[jax.Array]):
    """(log p(x, h), log q(h | x)) for h ~ q drawn from uniforms; each [K, B].

    Also builds the baseline's parameters, so `init` creates every variable.
    """
    hs, log_q = self.sample_posterior(x, uniforms)
    if self.baseline_hidden:
      self.input_baseline(x)
      if self.local_baselines:
        self.layer_baselines(x, hs)
    return self.log_joint(x, hs), log_q
