"""Training a sigmoid belief network (`models.sbn`) with a gradient estimator
of `objectives.reinforce`.

The objective is the ELBO, E_q[log p(x, h) − log q(h | x)] (nats), or for
VIMCO the K-sample bound L_K. Every loss here is the negative of a
**surrogate** whose gradient is the estimator's; its value is not the
objective, which the metrics report as 'objective' (−ELBO or −L_K, nats per
example, to be minimized).

Estimators (`ESTIMATORS`):

* 'reinforce': the score-function estimator with no baseline (Eq. 20.62);
* 'moving_average': with a running average of the learning signal;
* 'nvil': NVIL (Mnih & Gregor 2014): the input-dependent baseline b_ψ(x),
  centring and variance normalization; optionally with one local learning
  signal per inference layer (§3.3);
* 'vimco': VIMCO (Mnih & Rezende 2016) on L_K, K ≥ 2;
* 'straight_through': the biased straight-through gradient through the
  sampled h (Bengio et al. 2013).

The running averages of 'moving_average' and 'nvil' are the model variables
collection `STATISTICS` ({'mean', 'var'}: scalars, or [L] with NVIL's L
local learning signals). The loss returns their
new values in its metrics under the same key, and the generic train step
(`training.step`) writes them back after the update. Each new value is a
linear function of batch means, so averaging it over devices gives exactly
the value of the global batch.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import STATISTICS
from aefamily.objectives import reinforce
from aefamily.objectives.checks import check_fraction, check_images

Batch = dict[str, jax.Array]

ESTIMATORS = ('reinforce', 'moving_average', 'nvil', 'vimco',
              'straight_through')
sg = jax.lax.stop_gradient


def initial_statistics(num_signals: int | None = None
                       ) -> dict[str, dict[str, jax.Array]]:
  """The `STATISTICS` collection before training: mean 0, variance 1.

  Scalars, or [num_signals] for NVIL's local learning signals (one per
  inference layer).
  """
  shape = () if num_signals is None else (num_signals,)
  return {STATISTICS: {'mean': jnp.zeros(shape), 'var': jnp.ones(shape)}}


def _uniforms(rng: jax.Array, model, num_samples: int, batch_size: int):
  shapes = model.noise_shapes(num_samples, batch_size)
  return [jax.random.uniform(key, shape) for key, shape
          in zip(jax.random.split(rng, len(shapes)), shapes)]


def _check(x: jax.Array, model, estimator: str, num_samples: int,
           local_signals: bool = False, decay: float = 0.0) -> None:
  check_images(x, model.data_dim, unit_interval=True)  # Bernoulli visibles
  check_fraction('decay', decay)
  if estimator not in ESTIMATORS:
    raise ValueError(f'unknown estimator {estimator!r}; choose from '
                     f'{ESTIMATORS}')
  minimum = 2 if estimator == 'vimco' else 1
  if num_samples < minimum:
    raise ValueError(f'{estimator} needs num_samples >= {minimum}, got '
                     f'{num_samples}')
  if estimator == 'nvil' and not model.baseline_hidden:
    raise ValueError('nvil needs the input-dependent baseline: build the '
                     'model with baseline_hidden > 0')
  if local_signals and (estimator != 'nvil' or not model.local_baselines):
    raise ValueError('local learning signals are an option of nvil, on a '
                     'model built with local_baselines=True; got estimator '
                     f'{estimator!r}, local_baselines={model.local_baselines}')


def sbn_log_importance_weights(params, x: jax.Array, rng: jax.Array, *,
                               model, num_samples: int) -> jax.Array:
  """log w_k = log p(x, h_k) − log q(h_k | x), h_k ~ q(h | x).

  The signature of `objectives.vae.log_importance_weights`, so that
  `likelihood.iwae` estimates log p(x) for this model too.

  Args:
    params: the model's variables.
    x: [B, D] binary data.
    rng: PRNG key.
    model: a `models.sbn.SigmoidBeliefNet`.
    num_samples: K ≥ 1.

  Returns:
    [K, B] log importance weights (nats).

  Raises:
    ValueError: for a bad shape or dtype of x, an empty batch, concrete x
      outside [0, 1], or K < 1.
  """
  _check(x, model, 'reinforce', num_samples)
  log_p, log_q = model.apply(
      params, x, _uniforms(rng, model, num_samples, x.shape[0]))
  return log_p - log_q


def _nvil(signals: jax.Array, scores: jax.Array, baselines: jax.Array,
          stats: dict[str, jax.Array], *, decay: float, normalize: bool):
  """NVIL's score-function terms for S learning signals.

  Args:
    signals: [S, K, B] the learning signals f_s (nats).
    scores: [S, K, B] the log q terms each signal multiplies.
    baselines: [S, K, B] the input-dependent baselines b_s.
    stats: {'mean', 'var'}, [S], or scalars when S = 1.
    decay, normalize: as in `reinforce.nvil_signal`.

  Returns:
    (Σ_s sg(signal_s) · score_s, [K, B]; the baselines' regression loss,
    scalar; the new stats, shaped like stats).
  """
  per_signal = jax.tree.map(jnp.atleast_1d, stats)
  terms, regression, new = 0.0, 0.0, []
  for s in range(signals.shape[0]):
    stats_s = jax.tree.map(lambda v, s=s: v[s], per_signal)
    normalized, new_s = reinforce.nvil_signal(
        signals[s], baselines[s], stats_s, decay=decay, normalize=normalize)
    terms = terms + normalized * scores[s]
    regression = regression + jnp.mean(reinforce.baseline_regression_loss(
        signals[s], baselines[s], stats_s['mean']))
    new.append(new_s)
  new_stats = jax.tree.map(lambda old, *v: jnp.stack(v).reshape(old.shape),
                           stats, *new)
  return terms, regression, new_stats


def sbn_loss(params, batch: Batch, rng: jax.Array, *, model, estimator: str,
             num_samples: int = 1, decay: float = 0.8,
             variance_normalization: bool = True, local_signals: bool = False
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The negative surrogate of one estimator of ∇ ELBO (or ∇ L_K), batch mean.

  With h ~ q drawn K times per example and f = log p(x, h) − log q(h | x):

    reinforce         −mean[log p + sg(f) log q]
    moving_average    −mean[log p + sg(f − c) log q],  c the running mean of f
    nvil              −mean[log p + sg((f − b_ψ(x) − c) / max(1, √v)) log q]
                      + mean[(sg(f − c) − b_ψ(x))²]
    vimco             −mean[VIMCO surrogate of L_K]
    straight_through  −mean[f], h with the straight-through gradient

  stop_gradient (sg) keeps the learning signal off the inference network
  q_φ and the baseline b_ψ, so the generative model p_θ gets its ordinary
  gradient E[∇_θ log p], q_φ the score-function term, and b_ψ only its
  regression onto f − c. For nvil, c and v are the running mean and second
  moment of f − b_ψ(x) − c. With local_signals, each inference layer l has
  its own signal f_l, the terms of f that depend on h_l given h_{l−1}, with
  its own baseline b_l(h_{l−1}), c_l and v_l, and multiplies only
  log q(h_l | h_{l−1}) (Mnih & Gregor 2014, §3.3).

  Args:
    params: the model's variables, with the `STATISTICS` collection.
    batch: {'image': [B, D]} binary data, B ≥ 1 (gray values in [0, 1]
      give the cross-entropy; the values are checked only when concrete,
      not under jit).
    rng: PRNG key.
    model: a `models.sbn.SigmoidBeliefNet`.
    estimator: one of `ESTIMATORS`.
    num_samples: K, samples of h per example (≥ 2 for vimco); the other
      estimators average K independent estimates.
    decay: of the running statistics, in [0, 1).
    variance_normalization: nvil divides its signal by max(1, √v). Without
      it the estimate is of ∇ ELBO itself, at the same scale as the others.
    local_signals: nvil with one learning signal per inference layer; the
      model needs local_baselines=True and statistics of shape [L].

  Returns:
    (loss, aux): loss, scalar, is the negative surrogate. aux.objective is
    −ELBO, or −L_K for vimco (batch mean, nats); aux.metrics holds batch
    means of 'elbo' (nats), 'iwae_bound' for vimco and 'baseline_loss' for
    nvil; aux.statistics the new running statistics for moving_average and
    nvil, else None.

  Raises:
    ValueError: for a bad shape or dtype of the images, an empty batch,
      concrete images outside [0, 1], an unknown estimator, too few
      samples, a decay outside [0, 1) or NaN, nvil without a baseline
      network, or local_signals without nvil and local baselines.
  """
  x = batch['image']
  _check(x, model, estimator, num_samples, local_signals, decay)
  uniforms = _uniforms(rng, model, num_samples, x.shape[0])
  hs, log_qs = model.apply(params, x, uniforms, per_layer=True,
                           straight_through=estimator == 'straight_through',
                           method=model.sample_posterior)      # [L, K, B]
  log_ps = model.apply(params, x, hs, per_layer=True, method=model.log_joint)
  log_p, log_q = jnp.sum(log_ps, 0), jnp.sum(log_qs, 0)        # [K, B]
  signal = log_p - log_q
  metrics = {'elbo': jnp.mean(signal)}
  stats, new_stats = params.get(STATISTICS), None
  if estimator == 'straight_through':
    surrogate = signal
  elif estimator == 'vimco':
    surrogate, bound = reinforce.vimco_surrogate(log_p, log_q)
    metrics['iwae_bound'] = jnp.mean(bound)
  elif estimator == 'reinforce':
    surrogate = reinforce.reinforce_surrogate(log_p, log_q)
  elif estimator == 'moving_average':
    surrogate = reinforce.reinforce_surrogate(log_p, log_q, stats['mean'])
    new_stats = {
        'mean': reinforce.moving_average(stats['mean'], signal, decay=decay),
        'var': stats['var']}
  else:  # nvil
    if local_signals:
      # f_l keeps the terms of f that h_l can change, given h_{l−1}:
      # Σ_{j ≥ l} log p(h_{j−1} | h_j) − log q(h_j | h_{j−1}), + log p(h_L).
      signals = jnp.cumsum((log_ps - log_qs)[::-1], 0)[::-1]
      baselines = model.apply(params, x, hs, method=model.layer_baselines)
      scores = log_qs
    else:
      signals, scores = signal[None], log_q[None]
      baselines = jnp.broadcast_to(
          model.apply(params, x, method=model.input_baseline),
          signal.shape)[None]
    score_terms, metrics['baseline_loss'], new_stats = _nvil(
        signals, scores, baselines, stats, decay=decay,
        normalize=variance_normalization)
    surrogate = log_p + score_terms
  loss = -jnp.mean(surrogate)
  if estimator == 'nvil':
    loss = loss + metrics['baseline_loss']
  objective = -metrics.get('iwae_bound', metrics['elbo'])
  return loss, LossAux(metrics, objective=objective, statistics=new_stats)
