"""A feedforward network with a learned inverse per layer, for target propagation.

Layer l computes h_l = f_l(h_{l−1}) = tanh(W_l s(h_{l−1}) + b_l), with
h_0 = x and s the transmission of a hidden layer to the next: the identity
for continuous units, or sign(h) for 'sign' units (the discrete network of Lee et al. 2015),
which backprop cannot train. Each layer l ≥ 2 has a decoder, its learned
inverse g_l(h_l) = tanh(V_l s(h_l) + c_l) ≈ h_{l−1}; with input_inverse the
first layer has one too, g_1(h_1) = sigmoid(V_1 h_1 + c_1) ≈ x for data in
[0, 1], so that samples can be decoded to images (Bengio 2014, Algorithm 3).
'linear' units drop every tanh and sigmoid: a linear network, whose exact
inverses are known, for testing.

Above the L hidden layers sits one of two tops:

* a softmax output layer, logits = W s(h_L) + b;
* with side_information, the top auto-encoder of Bengio (2014)
  (Algorithms 4–5). Its encoder reads the label as side information,
  c = f_top(h_L, m·y, m) = tanh(U [s(h_L), m·onehot(y), m] + a), where
  m ∈ {0, 1} says whether the label is observed. Its decoder reconstructs
  h_L and predicts the label: g_top(c) = (tanh(V c + d), logits(c)).
  p(y | x) reads the logits with the label hidden, m = 0.

Like every module here it returns values (hidden layers, reconstructions,
logits) and computes no loss; `objectives.target_prop` holds the losses.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

UNITS = ('tanh', 'sign', 'linear')


def sign(h: jax.Array, *, straight_through: bool = False) -> jax.Array:
  """sign(h) ∈ {−1, +1} (−1 at 0), elementwise. [...] -> [...].

  Its derivative is zero almost everywhere. With straight_through, the
  backward pass treats it as the identity (Bengio, Léonard & Courville 2013)
  and its forward value is unchanged.
  """
  s = jnp.where(h > 0, 1.0, -1.0).astype(h.dtype)
  if straight_through:
    return h + jax.lax.stop_gradient(s - h)
  return s


class TargetPropNet(nn.Module):
  """x [..., D] -> logits [..., K], with inverses g_l for target propagation.

  Layers are numbered 1..L = len(hidden); `layer(l, h)` is f_l, `inverse(l,
  h)` is g_l. Kernels start orthogonal (as in Lee et al. 2015), which keeps
  a deep tanh stack and its inverses well conditioned at the start.

  Attributes:
    data_dim: D.
    hidden: the widths of the L ≥ 1 hidden layers.
    num_classes: K ≥ 2.
    units: 'tanh' (continuous), 'sign' (each hidden layer transmits
      sign(h_l) to the layer above, to its decoder and to the top) or
      'linear' (no nonlinearity anywhere).
    straight_through: for 'sign' units, differentiate sign as the identity
      (the backprop baseline of a sign network); targets do not need it.
    side_information: the top auto-encoder with the label as side
      information, in place of the softmax output layer.
    top_dim: the width of that auto-encoder's code c.
    input_inverse: give layer 1 a decoder g_1 back to the data.

  Raises (at initialization):
    ValueError: for no hidden layer, num_classes < 2, unknown units, or
      side_information with top_dim < 1.
  """
  data_dim: int
  hidden: Sequence[int]
  num_classes: int = 10
  units: str = 'tanh'
  straight_through: bool = False
  side_information: bool = False
  top_dim: int = 0
  input_inverse: bool = False

  def setup(self):
    if not self.hidden:
      raise ValueError('a target-propagation network needs a hidden layer')
    if self.num_classes < 2:
      raise ValueError(f'num_classes must be >= 2, got {self.num_classes}')
    if self.units not in UNITS:
      raise ValueError(f'unknown units {self.units!r}; choose from {UNITS}')
    if self.side_information and self.top_dim < 1:
      raise ValueError('side_information needs top_dim >= 1, got '
                       f'{self.top_dim}')
    ortho = nn.initializers.orthogonal()
    self.forward_layers = [nn.Dense(w, kernel_init=ortho, name=f'f_{l + 1}')
                           for l, w in enumerate(self.hidden)]
    below = (self.data_dim, *self.hidden[:-1])
    self.inverse_layers = [nn.Dense(below[l], kernel_init=ortho,
                                    name=f'g_{l + 1}')
                           for l in range(self.first_inverse - 1,
                                          len(self.hidden))]
    if self.side_information:
      self.top_encoder = nn.Dense(self.top_dim, kernel_init=ortho,
                                  name='f_top')
      self.top_decoder = nn.Dense(self.hidden[-1], kernel_init=ortho,
                                  name='g_top')
      self.top_logits = nn.Dense(self.num_classes, name='logits')
    else:
      self.output_layer = nn.Dense(self.num_classes, name='logits')

  @property
  def num_layers(self) -> int:
    """L, the number of hidden layers."""
    return len(self.hidden)

  @property
  def first_inverse(self) -> int:
    """The lowest layer with a decoder: 1 with input_inverse, else 2."""
    return 1 if self.input_inverse else 2

  def _squash(self, a: jax.Array) -> jax.Array:
    return a if self.units == 'linear' else jnp.tanh(a)

  def transmit(self, h: jax.Array) -> jax.Array:
    """What a hidden layer sends on: h, or sign(h) for sign units."""
    if self.units == 'sign':
      return sign(h, straight_through=self.straight_through)
    return h

  def layer(self, l: int, h_below: jax.Array) -> jax.Array:
    """f_l: h_{l−1} [..., H_{l−1}] -> h_l [..., H_l], for l in 1..L."""
    inputs = h_below if l == 1 else self.transmit(h_below)
    return self._squash(self.forward_layers[l - 1](inputs))

  def inverse(self, l: int, h: jax.Array) -> jax.Array:
    """g_l: h_l [..., H_l] -> ≈ h_{l−1} [..., H_{l−1}], for l ≥ first_inverse.

    tanh for a hidden layer below, sigmoid for the data (l = 1).
    """
    if not self.first_inverse <= l <= self.num_layers:
      raise ValueError(f'layer {l} has no inverse; inverses are '
                       f'{self.first_inverse}..{self.num_layers}')
    a = self.inverse_layers[l - self.first_inverse](self.transmit(h))
    return nn.sigmoid(a) if l == 1 and self.units != 'linear' else (
        self._squash(a))

  def hiddens(self, x: jax.Array) -> list[jax.Array]:
    """[h_1, …, h_L], the noise-free upward pass; x: [..., D]."""
    hs, h = [], x
    for l in range(1, self.num_layers + 1):
      h = self.layer(l, h)
      hs.append(h)
    return hs

  def top_encode(self, h: jax.Array, label_one_hot: jax.Array,
                 observed: jax.Array) -> jax.Array:
    """c = f_top(h_L, m·y, m). h: [..., H_L], label_one_hot: [..., K] (zero
    where unobserved), observed: [...] in {0, 1} -> c: [..., top_dim]."""
    inputs = jnp.concatenate(
        [self.transmit(h), label_one_hot * observed[..., None],
         observed[..., None]], axis=-1)
    return self._squash(self.top_encoder(inputs))

  def top_decode(self, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """g_top(c) = (reconstruction of h_L [..., H_L], logits [..., K])."""
    return self._squash(self.top_decoder(c)), self.top_logits(c)

  def logits(self, h: jax.Array) -> jax.Array:
    """The logits of p(y | h_L): [..., H_L] -> [..., K] (label hidden, m = 0,
    with side information)."""
    if self.side_information:
      batch = h.shape[:-1]
      c = self.top_encode(h, jnp.zeros((*batch, self.num_classes), h.dtype),
                          jnp.zeros(batch, h.dtype))
      return self.top_decode(c)[1]
    return self.output_layer(self.transmit(h))

  def logits_from(self, l: int, h: jax.Array) -> jax.Array:
    """The logits computed from layer l's value h [..., H_l] upward."""
    for k in range(l + 1, self.num_layers + 1):
      h = self.layer(k, h)
    return self.logits(h)

  def __call__(self, x: jax.Array) -> jax.Array:
    """The logits of p(y | x): [..., D] -> [..., K]."""
    hs = self.hiddens(x)
    if self.is_initializing():  # create every decoder's parameters
      for l in range(self.first_inverse, self.num_layers + 1):
        self.inverse(l, hs[l - 1])
    return self.logits(hs[-1])
