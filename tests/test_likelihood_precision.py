"""Every reported likelihood runs in float32 at Precision.HIGHEST.

On GPUs a matrix product that names no precision runs in TF32, on TPUs in
bfloat16 passes; the tests run on a CPU, whose kernels are exact either way,
so they read the precision off the compiled computations instead. Every
computation that JAX compiles while a likelihood is being computed is
dumped as StableHLO (`jax_dump_ir_to`), and each of its dot_general and
convolution ops must carry `precision = [HIGHEST, HIGHEST]`, with no
bfloat16 or float16 anywhere, even when the parameters arrive in bfloat16
and a lower default is set globally (as on a TPU).
"""

import contextlib
import functools
import math
import pathlib
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from aefamily.evaluators import dga as dga_evaluator
from aefamily.likelihood import exact
from aefamily.likelihood import iwae
from aefamily.likelihood import parzen
from aefamily.likelihood import partition
from aefamily.models.autoregressive import MADE
from aefamily.models.autoregressive import NADE
from aefamily.models.dga import DGA, stack_log_unnormalized
from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.models.vae import VAE
from aefamily.objectives.autoregressive import ensemble_log_prob
from aefamily.objectives.vae import log_importance_weights
from aefamily.objectives.sbn import sbn_log_importance_weights

D = 6


def _bf16(tree):
  """Parameters as a reduced-precision training step would leave them."""
  return jax.tree.map(lambda p: p.astype(jnp.bfloat16), tree)


@contextlib.contextmanager
def _lower_default(name: str):
  """A lower global default matmul precision (a TPU's is 'bfloat16')."""
  old = jax.config.values['jax_default_matmul_precision']
  jax.config.update('jax_default_matmul_precision', name)
  try:
    yield
  finally:
    jax.config.update('jax_default_matmul_precision', old)


@contextlib.contextmanager
def _compiled(tmp_path: pathlib.Path):
  """Collects the StableHLO text of every computation compiled inside.

  The caches are cleared first, so that a computation compiled earlier in
  the session is compiled (and dumped) again.
  """
  folder = tmp_path / 'hlo'
  folder.mkdir()
  modules = []
  old = (jax.config.values['jax_dump_ir_to'],
         jax.config.values['jax_dump_ir_modes'])
  jax.clear_caches()
  jax.config.update('jax_dump_ir_to', str(folder))
  jax.config.update('jax_dump_ir_modes', 'stablehlo')
  try:
    yield modules
  finally:
    jax.config.update('jax_dump_ir_to', old[0])
    jax.config.update('jax_dump_ir_modes', old[1])
    jax.clear_caches()
  modules.extend((p.name, p.read_text()) for p in sorted(folder.iterdir()))


_MATMUL = re.compile(r'stablehlo\.(dot_general|dot|convolution)\b')
_PRECISION = re.compile(r'precision(?:_config)? = \[([^\]]*)\]')
_NARROW_FLOAT = re.compile(r'[x<]b?f16>|\bb?f16\b')


def _assert_full_precision(modules, *, min_matmuls: int = 1) -> None:
  """Every matrix product and convolution at HIGHEST; no bf16/f16 but in
  the casts of arguments to float32."""
  assert modules, 'nothing was compiled'
  matmuls = 0
  for name, text in modules:
    if 'jit_convert_element_type' in name:
      continue  # an argument cast to float32 on its way in
    code = '\n'.join(line for line in text.splitlines()
                     if not line.lstrip().startswith('#loc'))
    narrow = _NARROW_FLOAT.search(code)
    assert narrow is None, f'{name} computes in {narrow.group(0)}'
    for line in code.splitlines():
      if not _MATMUL.search(line):
        continue
      matmuls += 1
      precision = _PRECISION.search(line)
      assert precision, f'{name}: no precision on {line.strip()}'
      levels = re.findall(r'[A-Z]+', precision.group(1))
      assert levels and set(levels) == {'HIGHEST'}, (
          f'{name}: {precision.group(0)} in {line.strip()}')
      assert 'algorithm' not in line, f'{name}: {line.strip()}'
  assert matmuls >= min_matmuls, f'only {matmuls} matrix products compiled'


def _self_check():
  """The checker itself flags a default-precision product and bf16."""
  w = jnp.ones((3, 2))
  default = jax.jit(lambda x: x @ w).lower(jnp.ones((4, 3))).as_text()
  narrow = jax.jit(lambda x: jnp.matmul(x, w.astype(jnp.bfloat16),
                                        precision='highest')).lower(
                                            jnp.ones((4, 3), jnp.bfloat16)
                                        ).as_text()
  for text in (default, narrow):
    with pytest.raises(AssertionError):
      _assert_full_precision([('self-check', text)])


def test_the_checker_flags_default_precision_and_bfloat16():
  _self_check()


# ----------------------------------------------------------------- models


def _linear_gaussian():
  """A linear-Gaussian VAE whose encoder is the exact posterior.

  z ~ N(0, I_2), x | z ~ N(W z + b, σ² I) with orthogonal columns of W, so
  that p(z | x) = N(S Wᵀ (x − b) / σ², S) with a diagonal S; the encoder
  outputs exactly that. Every importance weight is then p(x), and IWAE-K
  equals log p(x) = log N(x; b, W Wᵀ + σ² I) for any K.
  """
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(D, 2)))
  weight = q * np.array([2.0, 1.2])                     # [D, 2]
  bias = rng.normal(scale=0.5, size=D)
  noise_var = 0.5
  post_var = 1.0 / (1.0 + np.sum(weight ** 2, axis=0) / noise_var)  # [2]
  enc = post_var[:, None] * weight.T / noise_var        # [2, D]

  def head(w, b, log_var):
    return {'loc': {'kernel': jnp.asarray(w.T, jnp.float32),
                    'bias': jnp.asarray(b, jnp.float32)},
            'log_var': {'kernel': jnp.zeros(w.T.shape, jnp.float32),
                        'bias': jnp.asarray(log_var, jnp.float32)}}

  params = {'params': {
      'encoders_0': head(enc, -enc @ bias, np.log(post_var)),
      'decoders_0': head(weight, bias, np.full(D, np.log(noise_var)))}}
  model = VAE(data_dim=D, latent_dims=(2,), hidden=((),),
              likelihood='gaussian')
  x = rng.normal(size=(5, D)) * 1.5 + bias
  log_px = stats.multivariate_normal(
      bias, weight @ weight.T + noise_var * np.eye(D)).logpdf(x)
  return model, params, x.astype(np.float32), log_px


def _binary(rows: int, seed: int = 0) -> np.ndarray:
  return (np.random.default_rng(seed).random((rows, D)) < 0.4).astype(
      np.float32)


def _dga(seed: int = 0):
  model = DGA(data_dim=D, code_dim=3, hidden=(5,))
  return model, model.init(jax.random.key(seed), jnp.zeros((1, D)))


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize('family', ['vae', 'sbn'])
def test_iwae_compiles_at_highest_precision(family, tmp_path):
  if family == 'vae':
    model = VAE(data_dim=D, latent_dims=(2,), hidden=((4,),))
    log_weights = log_importance_weights
  else:
    model = SigmoidBeliefNet(data_dim=D, latent_dims=(3,), hidden=(4,),
                             baseline_hidden=0)
    log_weights = sbn_log_importance_weights
  x = _binary(3)
  noise = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  params = _bf16(model.init(jax.random.key(0), jnp.asarray(x), noise))
  with _lower_default('bfloat16'), _compiled(tmp_path) as modules:
    out = iwae.evaluate_log_likelihood(
        params, x, jax.random.key(1), model=model, num_samples=4,
        chunk_size=2, batch_size=2, log_weights=log_weights)
  _assert_full_precision(modules, min_matmuls=2)
  assert out['log_likelihood'].shape == (3,)


@pytest.mark.parametrize('kind', ['nade', 'made'])
def test_exact_nll_compiles_at_highest_precision(kind, tmp_path):
  x = _binary(5)
  if kind == 'nade':
    model = NADE(data_dim=D, hidden=4)
  else:
    model = MADE(data_dim=D, hidden=(8,), num_masks=2, seed=1)
  params = _bf16(model.init(jax.random.key(0), jnp.asarray(x[:2])))
  with _lower_default('bfloat16'), _compiled(tmp_path) as modules:
    out = exact.evaluate_log_likelihood(
        functools.partial(ensemble_log_prob, model=model), params, x,
        batch_size=2)
  # NADE's scan holds one product per step in its body.
  _assert_full_precision(modules, min_matmuls=1 if kind == 'nade' else 2)
  assert out.shape == (5,) and np.all(out < 0)


def test_parzen_compiles_at_highest_precision(tmp_path):
  rng = np.random.default_rng(0)
  samples = rng.random((7, D)).astype(jnp.bfloat16)
  test, valid = rng.random((3, D)), rng.random((4, D))
  with _lower_default('bfloat16'), _compiled(tmp_path) as modules:
    out = parzen.evaluate_parzen(test.astype(np.float32),
                                 valid.astype(np.float32), samples,
                                 sigmas=[0.3, 0.5], chunk_size=3,
                                 batch_size=2)
  _assert_full_precision(modules)
  assert math.isfinite(out['log_likelihood'])


def test_partition_function_compiles_at_highest_precision(tmp_path):
  model, params = _dga()
  params = _bf16(params)
  logits = np.random.default_rng(1).normal(size=(3, D)).astype(np.float32)
  log_p_star = jax.tree_util.Partial(
      functools.partial(stack_log_unnormalized, models=(model,)), (params,))
  with _lower_default('bfloat16'), _compiled(tmp_path) as modules:
    out = partition.estimate_log_partition(
        log_p_star, logits, jax.random.key(2), num_samples=8, chunk_size=4)
  # The model's encoder, decoder and prior, and the proposal's two products.
  _assert_full_precision(modules, min_matmuls=4)
  assert out['log_z'] <= 0.5


def test_dga_evaluator_compiles_at_highest_precision(tmp_path):
  model, params = _dga()
  params = _bf16(params)
  config = ml_collections.ConfigDict({'eval': {
      'num_reencoding_samples': 8, 'chunk_size': 4, 'num_components': 3,
      'num_samples': 8, 'num_images': 4}})
  workdir = tmp_path / 'run'
  workdir.mkdir()
  with _lower_default('bfloat16'), _compiled(tmp_path) as modules:
    out = dga_evaluator.evaluate(config, model, params, _binary(6),
                                 jax.random.key(3), image_shape=(2, 3),
                                 workdir=str(workdir))
  _assert_full_precision(modules, min_matmuls=4)
  assert math.isfinite(out['log_unnormalized'])


@pytest.mark.parametrize('default', ['bfloat16', 'BF16_BF16_F32'])
def test_iwae_under_a_lower_global_default_matches_float64(default,
                                                           tmp_path):
  """IWAE-K of a VAE with the exact posterior is log p(x) for any K.

  With a bfloat16 default set globally (as on a TPU), the estimate still
  equals the float64 closed form within float32 rounding (D = 6 terms of
  size ~10, so ~1e-5; 2e-4 allows for exp/log), and it compiled at
  HIGHEST. A CPU runs float32 products exactly at any precision setting,
  so the compiled precision is what shows the override here; on a GPU or
  TPU bfloat16 passes would miss the tolerance by orders of magnitude.
  """
  model, params, x, log_px = _linear_gaussian()
  with _lower_default(default), _compiled(tmp_path) as modules:
    out = iwae.evaluate_log_likelihood(
        params, x, jax.random.key(4), model=model, num_samples=6,
        chunk_size=3, batch_size=5)
  np.testing.assert_allclose(out['log_likelihood'], log_px, atol=2e-4)
  np.testing.assert_allclose(out['elbo'], log_px, atol=2e-4)
  _assert_full_precision(modules, min_matmuls=2)


def test_full_precision_casts_narrow_floats_only():
  from aefamily.likelihood.precision import at_least_float32
  tree = {'bf16': jnp.ones(2, jnp.bfloat16), 'f16': np.ones(2, np.float16),
          'f32': jnp.ones(2), 'int': np.arange(2, dtype=np.int8),
          'key': jax.random.key(0), 'python': 0.5}
  out = at_least_float32(tree)
  assert out['bf16'].dtype == jnp.float32
  assert isinstance(out['f16'], np.ndarray) and out['f16'].dtype == np.float32
  assert out['f32'] is tree['f32'] and out['int'] is tree['int']
  assert out['key'] is tree['key'] and out['python'] == 0.5
