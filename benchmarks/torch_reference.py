"""A PyTorch reference of the VAE and IWAE train steps, for speed comparisons.

The network is the one of configs/binarized_mnist_vae.py and
configs/binarized_mnist_iwae.py (Burda et al. 2016, §5): an encoder
784-200-200 (tanh) with linear heads for the mean and log-variance of a
50-dimensional diagonal Gaussian q(z | x), and a decoder 50-200-200 (tanh)
with a linear layer to the 784 logits of a factorized Bernoulli p(x | z),
its biases at the logit of the data mean. Adam has β = (0.9, 0.999) and
ε = 1e-4, added to √v̂ as in optax. The learning rate is held at 1e-3: the
library's decaying schedule costs a handful of scalar operations per step.

* `vae_loss`: the negative ELBO with the analytic KL
  (Kingma & Welling 2014, Eq. 10), as `objectives.vae.vae_loss`.
* `iwae_loss`: the negative K-sample importance-weighted bound (Burda et al.
  2016, Eq. 8), as `objectives.vae.iwae_loss`.

Both take their standard-normal noise as an argument; the train step draws
it. tests/test_benchmarks.py checks them against the library's bounds at
the same weights and noise.

Only `benchmarks/performance.py` imports this module, and only when torch
is installed (`pip install "aefamily[torch]"`).
"""

import math
import os
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_LOG_2PI = math.log(2 * math.pi)

# Where the reference step runs: a GPU where PyTorch sees one, as the JAX
# step runs on JAX's default device.
DEVICE = torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def synchronize() -> None:
  """Waits for the work queued on DEVICE (a no-op on the CPU)."""
  if DEVICE.type == 'cuda':
    torch.cuda.synchronize()


class VAE(nn.Module):
  """x [B, 784] -> (loc, log_var) of q(z | x); z [..., 50] -> logits of p(x | z)."""

  def __init__(self, data_mean: np.ndarray, hidden: int = 200,
               latent_dim: int = 50):
    super().__init__()
    data_dim = data_mean.shape[0]
    self.encoder = nn.Sequential(nn.Linear(data_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh())
    self.loc = nn.Linear(hidden, latent_dim)
    self.log_var = nn.Linear(hidden, latent_dim)
    self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, data_dim))
    mean = np.clip(data_mean, 1e-3, 1 - 1e-3)
    with torch.no_grad():
      self.decoder[-1].bias.copy_(torch.as_tensor(np.log(mean / (1 - mean)),
                                                  dtype=torch.float32))

  def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = self.encoder(x)
    return self.loc(h), self.log_var(h)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    return self.decoder(z)


def _bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
  """[..., D] -> [...]: −BCE with logits, summed over the last axis."""
  return -F.binary_cross_entropy_with_logits(
      logits, x.expand_as(logits), reduction='none').sum(-1)


def vae_loss(model: VAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
  """−mean ELBO, analytic KL to N(0, I). x: [B, D], eps: [K, B, d] ~ N(0, I)."""
  loc, log_var = model.encode(x)
  z = loc + torch.exp(0.5 * log_var) * eps
  log_likelihood = _bernoulli_log_prob(model.decode(z), x).mean(0)
  kl = 0.5 * (torch.exp(log_var) + loc.square() - 1 - log_var).sum(-1)
  return (kl - log_likelihood).mean()


def iwae_loss(model: VAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
  """−mean L_K, L_K = logsumexp_k log w_k − log K. x: [B, D], eps: [K, B, d]."""
  loc, log_var = model.encode(x)
  z = loc + torch.exp(0.5 * log_var) * eps
  log_prior = -0.5 * (z.square() + _LOG_2PI).sum(-1)
  # log q(z | x), with (z − μ)² / σ² written as ε².
  log_posterior = -0.5 * (eps.square() + log_var + _LOG_2PI).sum(-1)
  log_w = _bernoulli_log_prob(model.decode(z), x) + log_prior - log_posterior
  bound = torch.logsumexp(log_w, 0) - math.log(eps.shape[0])
  return -bound.mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {'vae': vae_loss,
                                                   'iwae': iwae_loss}


def make_train_step(family: str, data_mean: np.ndarray, *, num_samples: int,
                    compile_loss: bool = False,
                    seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
  """step(x [B, D]) -> loss: one Adam step on LOSSES[family] with K samples.

  Runs on `DEVICE`: the GPU where PyTorch has one, else the CPU, on every
  core (`torch.set_num_threads(os.cpu_count())`), flushing denormals to
  zero as XLA does. Adam uses its fused kernel. With compile_loss the loss
  and its backward pass go through `torch.compile` (Inductor); the first
  calls then compile. x must be on `DEVICE`; on a GPU the step returns
  before its work is done (`synchronize` waits for it).
  """
  torch.set_num_threads(os.cpu_count())
  # XLA's CPU backend flushes denormals to zero; without it, a few thousand
  # steps on one batch fill the weights and Adam's moments with denormals,
  # and every operation slows down many times.
  torch.set_flush_denormal(True)
  torch.manual_seed(seed)
  model = VAE(data_mean).to(DEVICE)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3,
                               betas=(0.9, 0.999), eps=1e-4, fused=True)
  loss_fn = LOSSES[family]
  if compile_loss:
    loss_fn = torch.compile(loss_fn)

  def step(x: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    eps = torch.randn(num_samples, x.shape[0], model.loc.out_features,
                      device=DEVICE)
    loss = loss_fn(model, x, eps)
    loss.backward()
    optimizer.step()
    return loss.detach()

  return step
