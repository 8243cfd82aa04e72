"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017).

Family 'vqvae'. Config fields: config.model (`VQModel`), the commitment
weight β (config.commitment_weight) and the moving averages' decay γ
(config.ema_decay) (`objectives.vqvae`). eval.py measures
the reconstruction through the quantized codes and the codebook's use, and
draws samples by decoding code indices drawn uniformly (the prior of the
paper's first stage, before an autoregressive prior is fitted to the
codes).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.evaluators.code_shaping import sample_quality
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.families.adversarial import build_autoencoder
from aefamily.families.adversarial import Networks
from aefamily.input_pipeline import Split
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.models.code_shaping import VQVAE
from aefamily.objectives import STATISTICS
from aefamily.objectives.vqvae import ema_statistics
from aefamily.objectives.vqvae import quantize
from aefamily.objectives.vqvae import vqvae_loss
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class VQModel(Networks):
  """config.model of a VQ-VAE: the `families.adversarial.Networks` fields
  and its codes'.

  Attributes:
    num_latents: M, the code vectors per example.
    latent_dim: D, their size.
    num_codes: K, the codebook's entries.
    ema: update the codebook by moving averages (else by its loss).
  """
  num_latents: int = 8
  latent_dim: int = 16
  num_codes: int = 64
  ema: bool = True

  def __post_init__(self):
    super().__post_init__()
    check(min(self.num_latents, self.latent_dim, self.num_codes) >= 1,
          'config.model.num_latents, latent_dim and num_codes must be >= 1')


@dataclasses.dataclass(frozen=True)
class VQVAESettings:
  """Family 'vqvae': β = 0.25 and γ = 0.99, as the paper."""
  model: VQModel = VQModel()
  commitment_weight: float = 0.25
  ema_decay: float = 0.99
  eval: SampleQualityEval = SampleQualityEval()

  def __post_init__(self):
    check(self.commitment_weight >= 0 and 0 < self.ema_decay < 1,
          'config.commitment_weight must be >= 0 and config.ema_decay in '
          f'(0, 1), got {self.commitment_weight}, {self.ema_decay}')


def build_vqvae(settings: VQVAESettings, train: Split) -> VQVAE:
  """The VQ-VAE of config.model: `families.adversarial.build_autoencoder`'s
  networks with a code of M·D numbers."""
  m = settings.model
  return VQVAE(autoencoder=build_autoencoder(
      m, train, code_dim=m.num_latents * m.latent_dim),
               num_latents=m.num_latents, latent_dim=m.latent_dim,
               num_codes=m.num_codes, ema=m.ema)


def init_vqvae(model: VQVAE, rng, x):
  network_rng, codebook_rng = jax.random.split(rng)
  variables = model.init(network_rng, x)
  if model.ema:
    variables = {**variables, **ema_statistics(
        codebook_rng, model.num_codes, model.latent_dim)}
  return variables


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """The test reconstruction through the quantized codes and the codebook's
  use; samples decode uniformly drawn code indices.

  Returns:
    {'reconstruction_nll' and its '_standard_error' (−log p(x | z_q), nats
    per example), 'perplexity' (of the test codes' use of the K entries),
    'codes_used' (entries chosen at least once)}.
  """
  codebook = (variables[STATISTICS]['codebook'] if model.ema
              else variables['params']['codebook'])

  @jax.jit
  def measure(x):
    indices, z_q = quantize(model.apply(variables, x, method=model.encode),
                            codebook)
    reconstruction = model.apply(variables, z_q, method=model.decode)
    return indices, -reconstruction.log_prob(x), reconstruction.mean()

  parts = [measure(jnp.asarray(images[i:i + 500]))
           for i in range(0, images.shape[0], 500)]
  indices = np.concatenate([np.asarray(p[0]) for p in parts]).reshape(-1)
  nll = np.concatenate([np.asarray(p[1]) for p in parts])
  usage = np.bincount(indices, minlength=model.num_codes) / indices.size
  used = usage[usage > 0]
  mean, se = mean_and_standard_error(nll)

  @functools.partial(jax.jit, static_argnums=1)
  def draw_samples(key, n):
    draws = jax.random.randint(key, (n, model.num_latents), 0,
                               model.num_codes)
    return model.apply(variables, codebook[draws], method=model.decode).mean()

  save_samples_and_reconstructions(
      workdir, np.asarray(draw_samples(rng, config.eval.num_images)), images,
      lambda x: np.asarray(measure(jnp.asarray(x))[2]), image_shape,
      config.eval.num_images)
  return {'reconstruction_nll': mean, 'reconstruction_nll_standard_error': se,
          'perplexity': float(np.exp(-np.sum(used * np.log(used)))),
          'codes_used': int(used.size),
          **sample_quality(config, draw_samples, images)}


registry.register(registry.Family(
    name='vqvae', settings=VQVAESettings, build_model=build_vqvae,
    init_variables=init_vqvae,
    build_loss=lambda s, model: functools.partial(
        vqvae_loss, model=model, commitment_weight=s.commitment_weight,
        ema_decay=s.ema_decay),
    evaluate=evaluate))
