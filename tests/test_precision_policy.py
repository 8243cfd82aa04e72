"""config.precision: the train step's products in bfloat16, the rest float32."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from aefamily import train
from aefamily.configs import digits_vae
from aefamily.models.vae import VAE
from aefamily.objectives.vae import vae_loss
from aefamily.training import precision


def _vae_and_batch():
  model = VAE(data_dim=64, latent_dims=(4,), hidden=((32, 32),))
  x = (jax.random.uniform(jax.random.key(0), (16, 64)) < 0.3).astype(
      jnp.float32)
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, 16)]
  params = model.init(jax.random.key(1), x, eps)
  loss_fn = functools.partial(vae_loss, model=model, num_samples=2)
  return loss_fn, params, {'image': x}


def _dot_lines(fn, *args) -> list[str]:
  hlo = jax.jit(fn).lower(*args).as_text()
  return [line for line in hlo.splitlines() if 'dot_general' in line]


def test_bfloat16_runs_every_product_of_the_gradient_in_bfloat16():
  loss_fn, params, batch = _vae_and_batch()
  key = jax.random.key(2)

  def grad_of(policy):
    loss = precision.with_policy(loss_fn, policy)
    return jax.grad(lambda p: loss(p, batch, key)[0])

  low = _dot_lines(grad_of('bfloat16'), params)
  full = _dot_lines(grad_of('float32'), params)
  # 5 Dense layers: a forward and two backward products each.
  assert len(low) == len(full) >= 15
  assert all(re.search(r'tensor<[0-9x]*xbf16>.*tensor<[0-9x]*xbf16>', line)
             for line in low), low
  assert not any('bf16' in line for line in full)


def test_bfloat16_gradients_are_float32_and_close_to_the_float32_ones():
  loss_fn, params, batch = _vae_and_batch()
  key = jax.random.key(2)

  def value_and_grad(policy):
    loss = precision.with_policy(loss_fn, policy)
    return jax.jit(jax.value_and_grad(lambda p: loss(p, batch, key)[0]))(
        params)

  (low_loss, low), (full_loss, full) = (value_and_grad('bfloat16'),
                                        value_and_grad('float32'))
  assert low_loss.dtype == jnp.float32
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(low))
  flat = lambda t: np.concatenate([np.ravel(g) for g in jax.tree.leaves(t)])
  error = np.linalg.norm(flat(low) - flat(full)) / np.linalg.norm(flat(full))
  # bfloat16 keeps 8 significant bits (a relative rounding of 2^-9 ≈ 0.002
  # per value): the gradient moves by a few of those, and no more.
  assert 1e-4 < error < 5e-2, error
  assert abs(float(low_loss) - float(full_loss)) < 5e-2 * abs(
      float(full_loss))


def test_an_unknown_precision_is_refused():
  with pytest.raises(ValueError, match="got 'float16'"):
    precision.with_policy(lambda *a: None, 'float16')


def test_a_bfloat16_run_keeps_float32_parameters_and_trains(tmp_path):
  def run(policy):
    config = digits_vae.get_config()
    config.update_from_flattened_dict({
        'model.latent_dims': (2,), 'model.hidden': ((16,),),
        'num_epochs': 2, 'eval_every_epochs': 0, 'log_every_steps': 5,
        'precision': policy})
    workdir = tmp_path / policy
    train.train_and_evaluate(config, str(workdir))
    lines = (workdir / 'metrics.jsonl').read_text().splitlines()
    restored = ocp.StandardCheckpointer().restore(
        next((workdir / 'checkpoints').glob('[0-9]*')) / 'state')
    return lines, restored

  low_lines, low_state = run('bfloat16')
  full_lines, _ = run('float32')
  floats = [x for x in jax.tree.leaves(low_state)
            if hasattr(x, 'dtype') and np.issubdtype(x.dtype, np.floating)]
  assert floats and all(x.dtype == np.float32 for x in floats)
  last = lambda lines: [float(v) for v in re.findall(
      r'"loss": ([-0-9.e]+)', lines[-1])][0]
  # The same run at float32 ends within a few percent of it.
  assert abs(last(low_lines) - last(full_lines)) < 0.05 * last(full_lines)
