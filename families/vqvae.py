"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017), and its prior over
the code indices learned by a MADE.

Family 'vqvae'. Config fields: config.model (`VQModel`), the commitment
weight β (config.commitment_weight) and the moving averages' decay γ
(config.ema_decay) (`objectives.vqvae`). eval.py measures the
reconstruction through the quantized codes and the codebook's use, then
fits the paper's second stage, an autoregressive prior over the M code
indices of the training images (here the library's MADE with a softmax
per code position, `fit_code_prior`, in place of the paper's PixelCNN),
and draws its samples by decoding the prior's draws of code indices; the
uniform prior of the first stage is measured beside it.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from aefamily.evaluators.code_shaping import sample_quality
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.families.adversarial import build_autoencoder
from aefamily.families.adversarial import Networks
from aefamily.input_pipeline import Split
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.models.autoregressive import MADE
from aefamily.models.code_shaping import VQVAE
from aefamily.objectives import STATISTICS
from aefamily.objectives.autoregressive import categorical_log_prob
from aefamily.objectives.autoregressive import one_hot_inputs
from aefamily.objectives.vqvae import ema_statistics
from aefamily.objectives.vqvae import quantize
from aefamily.objectives.vqvae import vqvae_loss
from aefamily.samplers.autoregressive import sample_categorical
from aefamily.training import experiment
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
class VQVAEEval(SampleQualityEval):
  """config.eval of a VQ-VAE: the sample-quality fields, and the MADE prior
  over the code indices (`fit_code_prior`).

  Attributes:
    code_prior_hidden: the MADE's hidden widths (ReLU).
    code_prior_epochs: its epochs of Adam over the training codes; 0 = no
      learned prior (samples from the uniform prior only).
    code_prior_learning_rate: its Adam step size.
  """
  code_prior_hidden: tuple[int, ...] = (500,)
  code_prior_epochs: int = 20
  code_prior_learning_rate: float = 1e-3

  def __post_init__(self):
    super().__post_init__()
    check(self.code_prior_epochs >= 0 and self.code_prior_learning_rate > 0
          and min(self.code_prior_hidden, default=0) >= 1,
          'config.eval.code_prior_epochs must be >= 0, code_prior_hidden '
          'one or more widths >= 1 and code_prior_learning_rate > 0')


@dataclasses.dataclass(frozen=True)
class VQVAESettings:
  """Family 'vqvae': β = 0.25 and γ = 0.99, as the paper."""
  model: VQModel = VQModel()
  commitment_weight: float = 0.25
  ema_decay: float = 0.99
  eval: VQVAEEval = VQVAEEval()

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


def fit_code_prior(indices: np.ndarray, num_codes: int, *,
                   hidden: tuple[int, ...], num_epochs: int,
                   learning_rate: float, rng: jax.Array,
                   batch_size: int = 100) -> tuple[MADE, dict]:
  """The VQ-VAE's second stage: an autoregressive prior p(k_1..k_M) over
  the code indices of the training images, fitted by maximum likelihood.

  van den Oord et al. (2017, §3.2) fit a PixelCNN to the latent map; this
  fits the library's MADE (Germain et al. 2015), one softmax over the K
  entries per code position, in the natural order of the M positions,
  with Adam on −(1/B) Σ_b log p(k_b) (`objectives.autoregressive.
  categorical_log_prob`).

  Args:
    indices: [N, M] the training codes' indices, int in [0, K).
    num_codes: K.
    hidden, num_epochs, learning_rate: the MADE's widths and its Adam.
    rng: PRNG key (initialization and the batches' order).
    batch_size: B; the last N mod B codes of each shuffled epoch are left
      out.

  Returns:
    (the MADE, its variables).

  Raises:
    ValueError: for fewer than B codes or M < 2.
  """
  n, m = indices.shape
  if n < batch_size or m < 2:
    raise ValueError(f'the code prior needs >= {batch_size} codes of >= 2 '
                     f'indices, got {indices.shape}')
  model = MADE(data_dim=m, hidden=tuple(hidden), outputs_per_dim=num_codes,
               inputs_per_dim=num_codes)
  init_rng, order_rng = jax.random.split(rng)
  params = model.init(init_rng, one_hot_inputs(jnp.zeros((1, m), jnp.int32),
                                               num_codes))
  optimizer = optax.adam(learning_rate)
  codes = jnp.asarray(indices, jnp.int32)
  steps = n // batch_size

  def nll(p, batch):
    return -jnp.mean(categorical_log_prob(p, batch, model=model))

  @jax.jit
  def epoch(state, key):
    def step(state, rows):
      p, opt_state = state
      loss, grads = jax.value_and_grad(nll)(p, codes[rows])
      updates, opt_state = optimizer.update(grads, opt_state, p)
      return (optax.apply_updates(p, updates), opt_state), loss

    order = jax.random.permutation(key, n)[:steps * batch_size]
    state, losses = jax.lax.scan(step, state,
                                 order.reshape(steps, batch_size))
    return state, jnp.mean(losses)

  state = (params, optimizer.init(params))
  for e, key in enumerate(jax.random.split(order_rng, num_epochs)):
    state, loss = epoch(state, key)
    logging.info('code prior epoch %d/%d: %.3f nats', e + 1, num_epochs,
                 float(loss))
  return model, state[0]


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """The test reconstruction through the quantized codes, the codebook's
  use, and the samples of the learned prior over the code indices
  (`fit_code_prior` on the training split's codes) and of the uniform one.

  Returns:
    {'reconstruction_nll' (−log p(x | z_q), nats per example) and
    'squared_error' (‖x − E[x | z_q]‖², summed over pixels in the images'
    own scale), each with its '_standard_error',
    'perplexity' (of the test codes' use of the K entries),
    'codes_used' (entries chosen at least once)}; with a learned prior also
    'code_prior_nll' and its '_standard_error' (−log p(k) of the test
    codes, nats per example; the uniform prior's is M log K) and, with
    config.eval.classifier_workdir, the learned prior's samples' Fréchet
    distance beside the uniform prior's ('frechet_distance_uniform_prior').
  """
  codebook = (variables[STATISTICS]['codebook'] if model.ema
              else variables['params']['codebook'])

  @jax.jit
  def measure(x):
    indices, z_q = quantize(model.apply(variables, x, method=model.encode),
                            codebook)
    reconstruction = model.apply(variables, z_q, method=model.decode)
    mean = reconstruction.mean()
    return (indices, -reconstruction.log_prob(x),
            jnp.sum(jnp.square(x - mean), axis=-1), mean)

  def codes_and_errors(x):
    parts = [measure(jnp.asarray(x[i:i + 500]))
             for i in range(0, x.shape[0], 500)]
    return [np.concatenate([np.asarray(p[k]) for p in parts])
            for k in range(3)]

  indices, nll, squared = codes_and_errors(images)
  usage = np.bincount(indices.reshape(-1), minlength=model.num_codes)
  usage = usage / indices.size
  used = usage[usage > 0]
  results = {'perplexity': float(np.exp(-np.sum(used * np.log(used)))),
             'codes_used': int(used.size)}
  for name, values in (('reconstruction_nll', nll),
                       ('squared_error', squared)):
    results[name], results[f'{name}_standard_error'] = (
        mean_and_standard_error(values))

  def decoder_of(draw_indices):
    @functools.partial(jax.jit, static_argnums=1)
    def draw_samples(key, n):
      return model.apply(variables, codebook[draw_indices(key, n)],
                         method=model.decode).mean()
    return draw_samples

  uniform = decoder_of(lambda key, n: jax.random.randint(
      key, (n, model.num_latents), 0, model.num_codes))
  draw_samples = uniform
  e = experiment.family_settings(config).eval  # with its defaults
  if e.code_prior_epochs:
    train_codes = codes_and_errors(experiment.load_split(config,
                                                         'train').images)[0]
    prior_rng, rng = jax.random.split(rng)
    prior, prior_params = fit_code_prior(
        train_codes, model.num_codes, hidden=e.code_prior_hidden,
        num_epochs=e.code_prior_epochs,
        learning_rate=e.code_prior_learning_rate, rng=prior_rng)
    prior_nll = -np.asarray(jax.jit(lambda k: categorical_log_prob(
        prior_params, k, model=prior))(jnp.asarray(indices)))
    results['code_prior_nll'], results['code_prior_nll_standard_error'] = (
        mean_and_standard_error(prior_nll))
    draw_samples = decoder_of(lambda key, n: sample_categorical(
        lambda k: prior.apply(prior_params, one_hot_inputs(k, prior.
                                                           outputs_per_dim)),
        key, np.arange(model.num_latents), num_samples=n)[0])
  results['code_prior_nll_uniform'] = float(
      model.num_latents * np.log(model.num_codes))

  save_samples_and_reconstructions(
      workdir, np.asarray(draw_samples(rng, config.eval.num_images)), images,
      lambda x: np.asarray(measure(jnp.asarray(x))[3]), image_shape,
      config.eval.num_images)
  results.update(sample_quality(config, draw_samples, images))
  if e.code_prior_epochs and e.classifier_workdir:
    results['frechet_distance_uniform_prior'] = sample_quality(
        config, uniform, images)['frechet_distance']
  return results


registry.register(registry.Family(
    name='vqvae', settings=VQVAESettings, build_model=build_vqvae,
    init_variables=init_vqvae,
    build_loss=lambda s, model: functools.partial(
        vqvae_loss, model=model, commitment_weight=s.commitment_weight,
        ema_decay=s.ema_decay),
    evaluate=evaluate))
