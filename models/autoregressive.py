"""Autoregressive autoencoders over binary vectors: NADE and MADE.

Both write p(x) = Π_d p(x_{o_d} | x_{o_<d}) for an ordering o of the D
dimensions, each conditional a Bernoulli whose logit the network computes
from the dimensions before it, so p(x) is normalized and exact: no latent
variable, no bound. Each module maps x [B, D] to the D conditional logits
[B, D], in the data's own coordinates (logit d is that of x_d, whatever the
ordering); `objectives.autoregressive` and `likelihood.exact` sum their
log-probabilities, `samplers.autoregressive` draws from them.

Both share one interface: `model.apply(params, x, mask)` with a mask index
in [0, model.num_masks), and `model.orderings()`, one ordering per mask
[K, D]. A NADE has one ordering, K = 1.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aefamily.models.mlp import activation_by_name


def check_ordering(ordering: Sequence[int], data_dim: int) -> np.ndarray:
  """The ordering as an int array [D].

  Raises:
    ValueError: if it is not a permutation of 0..D−1.
  """
  o = np.asarray(ordering, dtype=np.int64)
  if o.shape != (data_dim,) or not np.array_equal(np.sort(o),
                                                  np.arange(data_dim)):
    raise ValueError(f'an ordering must be a permutation of 0..{data_dim - 1}, '
                     f'got {list(ordering)[:10]}... of length {len(o)}')
  return o


class NADE(nn.Module):
  """The neural autoregressive distribution estimator (Larochelle & Murray
  2011; *Deep Learning* §20.10.10, Eqs. 20.83–20.84 there).

  With hidden units shared across the conditionals through tied input
  weights W [D, H],

    h_d = σ(c + Σ_{j<d} W_{o_j} x_{o_j}),
    p(x_{o_d} = 1 | x_{o_<d}) = σ(b_{o_d} + V_{o_d} · h_d),

  all D hidden vectors come from one running sum a_d = a_{d−1} + W_{o_{d−1}}
  x_{o_{d−1}}, so the D conditionals cost O(D·H) rather than O(D²·H). The
  running sum is a `lax.scan` over the ordering that computes each logit in
  its step: nothing of size [B, D, H] is held at once in the forward pass.

  Attributes:
    data_dim: D.
    hidden: H, sigmoid hidden units.
    ordering: o, a permutation of 0..D−1; None is 0, 1, ..., D−1.
    output_bias_init: initializer of the output biases b [D].
  """
  data_dim: int
  hidden: int = 500
  ordering: tuple[int, ...] | None = None
  output_bias_init: Callable = nn.initializers.zeros_init()

  num_masks = 1  # one ordering; `mask` is always 0

  def order(self) -> np.ndarray:
    """o as an int array [D]."""
    if self.ordering is None:
      return np.arange(self.data_dim)
    return check_ordering(self.ordering, self.data_dim)

  def orderings(self) -> np.ndarray:
    """[1, D]: the one ordering, as MADE's `orderings`."""
    return self.order()[None]

  def setup(self):
    d, h = self.data_dim, self.hidden
    self.W = self.param('W', nn.initializers.normal(0.01), (d, h))
    self.V = self.param('V', nn.initializers.normal(0.01), (d, h))
    self.b = self.param('b', self.output_bias_init, (d,))
    self.c = self.param('c', nn.initializers.zeros_init(), (h,))

  def __call__(self, x: jax.Array, mask: jax.Array | int = 0) -> jax.Array:
    """[B, D] -> the conditionals' logits [B, D] (data coordinates).

    `mask` is there for the interface MADE shares; a NADE's only mask is 0.
    """
    del mask
    o = self.order()

    def step(a, inputs):  # a = c + Σ_{j<d} W_{o_j} x_{o_j}: [B, H]
      x_d, w_d, v_d = inputs
      return a + x_d[:, None] * w_d, nn.sigmoid(a) @ v_d

    a0 = jnp.broadcast_to(self.c, (x.shape[0], self.hidden))
    _, logits = jax.lax.scan(step, a0, (x[:, o].T, self.W[o], self.V[o]))
    # logits[k] is that of x_{o_k}; back to data coordinates.
    return (logits.T + self.b[o])[:, np.argsort(o)]

  def sample(self, rng: jax.Array, num_samples: int) -> jax.Array:
    """Ancestral draws x ~ p(x), [N, D] in {0, 1}, in O(D·H) per draw.

    The running sum again: x_{o_d} is drawn from its conditional, then
    W_{o_d} x_{o_d} is added to the hidden pre-activations, one `lax.scan`
    over the ordering. (`samplers.autoregressive.sample`, for any model,
    recomputes all conditionals at each step: O(D²·H).)
    """
    o = self.order()

    def step(a, inputs):
      w_d, v_d, b_d, key = inputs
      x_d = jax.random.bernoulli(key, nn.sigmoid(nn.sigmoid(a) @ v_d + b_d))
      x_d = x_d.astype(jnp.float32)
      return a + x_d[:, None] * w_d, x_d

    a0 = jnp.broadcast_to(self.c, (num_samples, self.hidden))
    keys = jax.random.split(rng, self.data_dim)
    _, x = jax.lax.scan(step, a0, (self.W[o], self.V[o], self.b[o], keys))
    return x.T[:, np.argsort(o)]


def made_degrees(data_dim: int, hidden: Sequence[int], num_masks: int, *,
                 order_agnostic: bool, seed: int,
                 natural_ordering: bool = True
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
  """MADE's connectivity degrees for K masks (Germain et al. 2015, §4.2–4.3).

  The input and output unit of dimension o_k has degree k + 1 (1..D); each
  hidden unit of layer l draws its degree m^l uniformly from
  [min m^{l−1}, D − 1], so no unit depends on all D inputs. Mask 0 has
  the ordering 0..D−1 (natural_ordering) or draws one; the other masks
  share it, or with order_agnostic draw one each (order-agnostic
  training); the hidden degrees differ between masks (connectivity-
  agnostic training).

  Returns:
    input degrees [K, D] (int, 1..D; the ordering is their argsort) and,
    per hidden layer, degrees [K, H_l].

  Raises:
    ValueError: for no hidden layer, a width < 1, D < 2 or K < 1.
  """
  if (not hidden or min(hidden) < 1 or data_dim < 2 or num_masks < 1):
    raise ValueError(f'MADE needs D >= 2, hidden widths >= 1 and >= 1 mask, '
                     f'got D={data_dim}, hidden={hidden}, masks={num_masks}')
  rs = np.random.RandomState(seed)
  inputs, layers = [], [[] for _ in hidden]
  first = np.arange(data_dim) if natural_ordering else rs.permutation(data_dim)
  for k in range(num_masks):
    order = rs.permutation(data_dim) if order_agnostic and k else first
    degrees = np.empty(data_dim, np.int64)
    degrees[order] = np.arange(1, data_dim + 1)
    inputs.append(degrees)
    low = 1
    for l, width in enumerate(hidden):
      m = rs.randint(low, data_dim, size=width)  # [low, D − 1]
      layers[l].append(m)
      low = int(m.min())
  return np.stack(inputs), [np.stack(m) for m in layers]


class MADE(nn.Module):
  """The masked autoencoder for distribution estimation (Germain, Gregor,
  Murray & Larochelle 2015).

  An MLP x -> hidden layers -> D logits whose weight matrices are multiplied
  by binary masks built from connectivity degrees (`made_degrees`):

    M^l[k', k] = 1[m^l(k) ≥ m^{l−1}(k')]   (Eq. 12 there, hidden layers),
    M^V[k, d] = 1[m^0(d) > m^L(k)]          (Eq. 13, the output layer),

  so logit d depends only on the inputs of smaller degree: the autoregressive
  property. `__call__` takes the index of one of the K masks (an ordering
  with its connectivity); the masks are computed from the stored degrees
  inside the jitted function, so a traced index picks one.

  Attributes:
    data_dim: D.
    hidden: the hidden widths, one or more layers.
    num_masks: K.
    order_agnostic: masks 1..K−1 draw their own orderings.
    natural_ordering: mask 0 has the ordering 0..D−1 (else it draws one).
    activation: of the hidden units (ReLU in the paper's experiments).
    seed: of the degrees; part of the model, like its architecture.
    direct_connections: add masked direct connections from the inputs to
      the outputs (the paper's "direct input connections", used in its
      MNIST experiments), a logistic autoregressive term.
    output_bias_init: initializer of the output biases [n·D].
    outputs_per_dim: n outputs per dimension, all with dimension d's
      connectivity; n > 1 gives [..., n, D] (IAF's shift and gate, Kingma
      et al. 2016; a categorical's logits, `objectives.autoregressive.
      categorical_log_prob`).
    inputs_per_dim: m inputs per dimension, all with dimension d's degree:
      x is [..., m, D] flattened to [..., m·D] (a categorical's one-hot
      code, the m categories of x_d in column c·D + d).
  """
  data_dim: int
  hidden: tuple[int, ...] = (500,)
  num_masks: int = 1
  order_agnostic: bool = False
  natural_ordering: bool = True
  activation: str = 'relu'
  seed: int = 0
  direct_connections: bool = False
  output_bias_init: Callable = nn.initializers.zeros_init()
  outputs_per_dim: int = 1
  inputs_per_dim: int = 1

  def degrees(self) -> tuple[np.ndarray, list[np.ndarray]]:
    """`made_degrees` of this model: [K, D] and [K, H_l] per layer."""
    return made_degrees(self.data_dim, self.hidden, self.num_masks,
                        order_agnostic=self.order_agnostic, seed=self.seed,
                        natural_ordering=self.natural_ordering)

  def orderings(self) -> np.ndarray:
    """Each mask's ordering o: [K, D]."""
    return np.argsort(self.degrees()[0], axis=1)

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | int = 0,
               context: jax.Array | None = None) -> jax.Array:
    """[..., m·D] and a mask index in [0, K) -> logits [..., D] (data
    coordinates), or [..., n, D] for n = outputs_per_dim > 1; m =
    inputs_per_dim.

    A context [..., C] (broadcast against x), if given, enters the first
    hidden layer through an unmasked dense map: every output may depend on
    it (IAF's encoder features, Kingma et al. 2016, Fig. 2).

    Raises:
      ValueError: if x's last axis is not m·D.
    """
    m_in, d = self.inputs_per_dim, self.data_dim
    if x.shape[-1] != m_in * d:
      raise ValueError(f'MADE takes inputs [..., {m_in * d}] '
                       f'(inputs_per_dim × data_dim), got {x.shape}')
    act = activation_by_name(self.activation)
    inputs, layers = self.degrees()
    below = jnp.tile(jnp.asarray(inputs)[mask], m_in)
    h = x
    for l, width in enumerate(self.hidden):
      m = jnp.asarray(layers[l])[mask]
      h = MaskedDense(width, name=f'hidden_{l}')(
          h, below[:, None] <= m[None, :])
      if l == 0 and context is not None:
        h = h + nn.Dense(width, use_bias=False, name='context')(context)
      h = act(h)
      below = m
    degree = jnp.asarray(inputs)[mask]
    n = self.outputs_per_dim
    out = MaskedDense(n * self.data_dim, bias_init=self.output_bias_init,
                      name='logits')
    logits = out(h, jnp.tile(below[:, None] < degree[None, :], (1, n)))
    if self.direct_connections:
      # Input d' to output d when d' comes before d in the ordering.
      direct = MaskedDense(n * self.data_dim, use_bias=False, name='direct')
      logits = logits + direct(
          x, jnp.tile(degree[:, None] < degree[None, :], (m_in, n)))
    if n == 1:
      return logits
    return logits.reshape(*logits.shape[:-1], n, self.data_dim)


class MaskedDense(nn.Module):
  """A dense layer whose kernel [in, out] is multiplied by a 0/1 mask."""
  features: int
  use_bias: bool = True
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    """[B, in] and mask [in, out] (bool) -> [B, out]."""
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (x.shape[-1], self.features))
    y = x @ (kernel * mask)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y
