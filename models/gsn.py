"""The deep generative stochastic network (GSN) and its hybrid with a label.

Bengio, Thibodeau-Laufer, Alain & Yosinski 2014, "Deep generative stochastic
networks trainable by backprop" (*Deep Learning* §20.12). A GSN is the
generalization of the denoising autoencoder whose Markov chain carries a
latent state beside the visible one:

  h^(k) ~ p(h | h^(k−1), x^(k−1)),   x^(k) ~ p(x | h^(k)).

The state is a stack of layers (x, h_1, …, h_K), each connected to the one
below and the one above by one weight W_i, used in both directions (tied):
layer i's pre-activation is

  a_i = b_i + h_{i−1} W_{i−1} + h_{i+1} W_iᵀ,

as in a deep Boltzmann machine. One update of the whole state visits the
layers in the alternating order of a DBM's Gibbs chain: first the odd
layers (h_1, h_3, …) from their current neighbours, then the even ones
(x, h_2, …) from the new odd layers. A hidden layer adds Gaussian noise of
standard deviation σ before and after its nonlinearity (the paper's σ = 2
on MNIST; with `noiseless_first_layer`, h_1 gets none, as in the paper's
MNIST runs); the visible layer outputs the parameters of p(x | h_1), from
which the caller samples and corrupts the next visible state
(`objectives.gsn`, `samplers.gsn`).

The hybrid GSN (Zöhrer & Pernkopf 2014; *Deep Learning* §20.12.1) puts a
label layer y on top of h_K (num_classes > 0): a_y = c + h_K V, its state is
the softmax of a_y (a mean-field value rather than a sample, so that the
label's reconstruction cost reaches every layer by backprop), and it feeds
h_K back through Vᵀ like any other layer above.

The module draws no random numbers: `update` takes the hidden noise as
standard-normal arrays.
"""

from typing import Callable, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from aefamily.models.distributions import Bernoulli, Normal
from aefamily.models.mlp import activation_by_name

# The state of the chain: (x, h_1, …, h_K) or, for a hybrid GSN,
# (x, h_1, …, h_K, y); x [B, D], h_i [B, hidden[i − 1]], y [B, C].
State = tuple[jax.Array, ...]


@flax.struct.dataclass
class GSNUpdate:
  layers: State                   # the new state; layers[0] is the input x̃
  visible: Bernoulli | Normal     # p(x | h_1), parameters [B, D]
  label_logits: jax.Array | None  # a_y [B, C] of a hybrid GSN, else None


class GSN(nn.Module):
  """The deep GSN: one update of (x, h_1, …, h_K[, y]) given explicit noise.

  Attributes:
    data_dim: D.
    hidden: the widths of h_1 … h_K (K ≥ 1).
    activation: the hidden nonlinearity (the paper: tanh), a name in
      `models.mlp.ACTIVATIONS`.
    likelihood: p(x | h_1): 'bernoulli' (logits a_0) or 'gaussian' (mean
      a_0, fixed log-variance log_var).
    log_var: the Gaussian reconstruction's log-variance. Unused for
      'bernoulli'.
    noise_std: σ ≥ 0 of the Gaussian noise added before and after each
      hidden nonlinearity.
    noiseless_first_layer: h_1 gets no noise.
    num_classes: C ≥ 2 for a hybrid GSN with a label layer on top; 0 for
      none.
    output_bias_init: initializer of the visible bias b_0.

  Raises (at initialization):
    ValueError: for no hidden layer, an unknown likelihood or activation,
      σ < 0, or num_classes = 1.
  """
  data_dim: int
  hidden: Sequence[int] = (1500, 1500)
  activation: str = 'tanh'
  likelihood: str = 'bernoulli'
  log_var: float = 0.0
  noise_std: float = 2.0
  noiseless_first_layer: bool = True
  num_classes: int = 0
  output_bias_init: Callable = nn.initializers.zeros_init()

  def setup(self):
    if not tuple(self.hidden):
      raise ValueError('a GSN needs at least one hidden layer, got hidden=()')
    if self.likelihood not in ('bernoulli', 'gaussian'):
      raise ValueError("likelihood must be 'bernoulli' or 'gaussian', got "
                       f'{self.likelihood!r}')
    if not self.noise_std >= 0:
      raise ValueError(f'noise_std must be >= 0, got {self.noise_std}')
    if self.num_classes == 1 or self.num_classes < 0:
      raise ValueError(f'num_classes must be 0 or >= 2, got {self.num_classes}')
    self.hidden_fn = activation_by_name(self.activation)
    widths = self.widths()
    # W_i joins layer i to layer i + 1; the paper draws it uniform in
    # ±sqrt(6 / (n_i + n_{i+1})), Glorot's initialization.
    self.kernels = [
        self.param(f'kernel_{i}', nn.initializers.glorot_uniform(),
                   (widths[i], widths[i + 1])) for i in range(len(widths) - 1)]
    self.biases = [
        self.param(f'bias_{i}', self.output_bias_init if i == 0
                   else nn.initializers.zeros_init(), (width,))
        for i, width in enumerate(widths)]

  def widths(self) -> tuple[int, ...]:
    """The layer widths (D, hidden…, [C])."""
    label = (self.num_classes,) if self.num_classes else ()
    return (self.data_dim, *self.hidden, *label)

  def initial_state(self, x: jax.Array) -> State:
    """The chain's start: the visible x [B, D], every other layer at zero."""
    return (x, *(jnp.zeros((x.shape[0], w), x.dtype)
                 for w in self.widths()[1:]))

  def pre_activation(self, layers: State, i: int) -> jax.Array:
    """a_i = b_i + h_{i−1} W_{i−1} + h_{i+1} W_iᵀ, [B, widths[i]]."""
    a = self.biases[i]
    if i > 0:
      a = a + layers[i - 1] @ self.kernels[i - 1]
    if i < len(layers) - 1:
      a = a + layers[i + 1] @ self.kernels[i].T
    return a

  def _hidden(self, a: jax.Array, noise: jax.Array, i: int) -> jax.Array:
    sigma = 0.0 if i == 1 and self.noiseless_first_layer else self.noise_std
    return self.hidden_fn(a + sigma * noise[0]) + sigma * noise[1]

  def visible_distribution(self, a: jax.Array) -> Bernoulli | Normal:
    """p(x | h_1) from a_0 [..., D]."""
    if self.likelihood == 'bernoulli':
      return Bernoulli(a)
    return Normal(a, jnp.full_like(a, self.log_var))

  def update(self, layers: State,
             noise: Sequence[jax.Array]) -> GSNUpdate:
    """One update of the state: the odd layers, then the even ones.

    Args:
      layers: (x̃, h_1, …, h_K[, y]); x̃ [B, D] is the (corrupted) visible
        state that h_1 reads.
      noise: K standard-normal arrays, [2, B, hidden[i]] for h_{i+1}:
        [0] before the nonlinearity, [1] after; scaled by noise_std.

    Returns:
      `GSNUpdate`: the new hidden (and label) layers, with layers[0]
      still x̃; p(x | h_1) of the new h_1; the label logits.

    Raises:
      ValueError: if layers or noise do not have one entry per layer.
    """
    num_layers = len(self.widths())
    if len(layers) != num_layers or len(noise) != len(tuple(self.hidden)):
      raise ValueError(f'expected {num_layers} layers and '
                       f'{len(tuple(self.hidden))} noise arrays, got '
                       f'{len(layers)} and {len(noise)}')
    layers = list(layers)
    label_layer = num_layers - 1 if self.num_classes else None
    visible = label_logits = None
    for parity in (1, 0):  # the DBM's Gibbs order: odd layers, then even
      for i in range(parity, num_layers, 2):
        a = self.pre_activation(layers, i)
        if i == 0:
          visible = self.visible_distribution(a)
        elif i == label_layer:
          label_logits = a
          layers[i] = jax.nn.softmax(a)
        else:
          layers[i] = self._hidden(a, noise[i - 1], i)
    return GSNUpdate(layers=tuple(layers), visible=visible,
                     label_logits=label_logits)

  def __call__(self, x: jax.Array) -> GSNUpdate:
    """One noiseless update from `initial_state(x)` (creates the variables)."""
    noise = [jnp.zeros((2, x.shape[0], w)) for w in self.hidden]
    return self.update(self.initial_state(x), noise)
