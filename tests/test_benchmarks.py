"""benchmarks/performance.py runs, and its PyTorch reference computes the library's bounds."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily.configs import binarized_mnist_vae
from aefamily.diagnostics import gradients
from aefamily.models.vae import VAE
from aefamily.objectives import densities
from aefamily.training import command_line
from aefamily import families  # registers the library's families
from aefamily.training import registry
from aefamily.training import experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

performance = None  # imported per test file: see conftest.forget_benchmark_modules


@pytest.fixture(autouse=True, scope='module')
def _import_performance(_fresh_benchmarks):
  global performance
  from aefamily.benchmarks import performance as module  # pylint: disable=g-import-not-at-top
  performance = module


@pytest.mark.parametrize('version, expected', [
    ('0.10.2', '--xla_cpu_experimental_ynn_fusion_type='),
    ('0.11.0', '--xla_cpu_experimental_ynn_fusion_type='),
    ('0.9.1', None),    # releases that may not know the flag: left alone
    ('0.12.0', None),
    ('unknown', None),
])
def test_ynnpack_fusions_are_turned_off_only_where_the_flag_exists(
    monkeypatch, version, expected):
  monkeypatch.delenv('XLA_FLAGS', raising=False)
  command_line.prefer_fast_cpu_kernels(version)
  assert os.environ.get('XLA_FLAGS') == expected


def test_a_users_own_ynnpack_setting_is_kept(monkeypatch):
  mine = '--xla_force_host_platform_device_count=2 ' \
         '--xla_cpu_experimental_ynn_fusion_type=INDIVIDUAL_DOT'
  monkeypatch.setenv('XLA_FLAGS', mine)
  command_line.prefer_fast_cpu_kernels('0.10.2')
  assert os.environ['XLA_FLAGS'] == mine


def test_the_installed_jaxlib_accepts_the_flags_it_is_given():
  # XLA aborts on a flag it does not know, so run a computation in a fresh
  # process with the flags train.py would set.
  code = ('from aefamily.training import command_line; '
          'command_line.prefer_fast_cpu_kernels(); '
          'import jax.numpy as jnp; print(float(jnp.arange(4.0).sum()))')
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == '6.0'


def test_a_train_step_row_has_a_rate_and_a_flop_count():
  row = performance.benchmark_train_step('classifier', 10, steps=2, rounds=1)
  assert row.rate > 0 and row.gflops > 0 and row.peak_rss_mib > 0
  assert row.torch_rate is None
  table = performance.markdown_table([row], peak_gflops=row.gflops * 2)
  assert '| classifier train step' in table and '50%' in table


@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_a_timed_step_runs_under_its_precision_policy(precision):
  call = performance.jax_train_call('vae', 10, precision=precision)
  hlo = call.step.lower(call.state, call.batches, call.key).as_text()
  products = re.findall(r'stablehlo\.dot_general.*', hlo)
  assert products
  in_bf16 = [p for p in products if 'bf16' in p]
  assert len(in_bf16) == (len(products) if precision == 'bfloat16' else 0)


def test_every_trainable_family_has_a_benchmark_config():
  for name, module in performance.FAMILY_CONFIGS.items():
    assert module.get_config().family == name
  assert set(performance.FAMILY_CONFIGS) <= set(registry.names())


def test_time_interleaved_times_every_call():
  calls = {'a': lambda: jnp.ones(3), 'b': lambda: jnp.zeros(3)}
  seconds = performance.time_interleaved(calls, steps=2, rounds=2)
  assert set(seconds) == {'a', 'b'} and min(seconds.values()) > 0


def _torch_vae(params, data_mean):
  """The torch reference VAE holding the flax VAE's params."""
  torch = pytest.importorskip('torch')
  from aefamily.benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  model = torch_reference.VAE(data_mean)
  encoder, decoder = params['params']['encoders_0'], params['params']['decoders_0']
  layers = [
      (model.encoder[0], encoder['MLP_0']['Dense_0']),
      (model.encoder[2], encoder['MLP_0']['Dense_1']),
      (model.loc, encoder['loc']), (model.log_var, encoder['log_var']),
      (model.decoder[0], decoder['MLP_0']['Dense_0']),
      (model.decoder[2], decoder['MLP_0']['Dense_1']),
      (model.decoder[4], decoder['logits'])]
  with torch.no_grad():
    for linear, dense in layers:
      linear.weight.copy_(torch.tensor(np.array(dense['kernel']).T))
      linear.bias.copy_(torch.tensor(np.array(dense['bias'])))
  return torch, torch_reference, model


@pytest.mark.parametrize('num_samples', [1, 5])
def test_torch_reference_losses_equal_the_library_bounds(num_samples):
  config = binarized_mnist_vae.get_config()
  split = performance.synthetic_split(config, 16)
  _, model, state = experiment.create_state(config, split, 1)
  torch, torch_reference, torch_model = _torch_vae(state.params,
                                                   split.images.mean(0))
  eps = np.random.default_rng(0).standard_normal(
      (num_samples, 16, 50)).astype(np.float32)
  x = jnp.asarray(split.images)
  out = model.apply(state.params, x, [jnp.asarray(eps)])
  log_likelihood = out.likelihood.log_prob(x)  # [K, B]
  q = out.posterior[0]
  elbo = jnp.mean(log_likelihood, 0) - densities.gaussian_kl(q.loc, q.log_var)
  log_w = (log_likelihood + densities.standard_normal_log_prob(out.z[0])
           - q.log_prob(out.z[0]))
  bound = jax.nn.logsumexp(log_w, 0) - np.log(num_samples)
  xt, epst = torch.from_numpy(split.images), torch.from_numpy(eps)
  with torch.no_grad():
    vae = torch_reference.vae_loss(torch_model, xt, epst).item()
    iwae = torch_reference.iwae_loss(torch_model, xt, epst).item()
  np.testing.assert_allclose(vae, -float(jnp.mean(elbo)), rtol=1e-5)
  np.testing.assert_allclose(iwae, -float(jnp.mean(bound)), rtol=1e-5)


def test_gradient_snr_rows_agree_where_the_estimators_must():
  """At K = 1 DReG is STL; the decoder's gradient is the same for every
  encoder estimator. Draws use the same keys, so both hold to rounding."""
  model = VAE(data_dim=12, latent_dims=(3,), hidden=((8,),))
  images = (np.random.default_rng(0).random((16, 12)) < 0.5).astype(
      np.float32)
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(images),
                      [jnp.zeros(s) for s in model.noise_shapes(1, 16)])
  rows = gradients.iwae_gradient_snr(model, params, images, ks=[1, 4],
                                     num_draws=8, seed=0)
  by = {(r['K'], r['gradient']): r for r in rows}
  assert len(rows) == 6
  np.testing.assert_allclose(by[1, 'dreg']['encoder_snr'],
                             by[1, 'stl']['encoder_snr'], rtol=1e-4)
  for k in (1, 4):
    for gradient in ('stl', 'dreg'):
      np.testing.assert_allclose(by[k, gradient]['decoder_snr'],
                                 by[k, 'reparameterization']['decoder_snr'],
                                 rtol=1e-4)


def test_leaderboard_runs_members_side_by_side_and_pairs_them(tmp_path,
                                                              shared_data):
  out = tmp_path / 'board'
  cmd = [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
         f'--output_dir={out}', '--members=vae,iwae_dreg', '--epochs=1',
         '--eval_samples=10', '--max_test_examples=100',
         f'--data_dir={shared_data / "binarized_mnist"}']
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  board = json.loads((out / 'leaderboard.json').read_text())
  rows = {r['member']: r for r in board['rows']}
  per_example = {m: np.load(out / m / 'eval_test_per_example.npz')[
      'log_likelihood'] for m in rows}
  assert per_example['vae'].shape == (100,)
  gain = per_example['iwae_dreg'] - per_example['vae']
  np.testing.assert_allclose(rows['iwae_dreg']['gain_over_vae'], gain.mean())
  np.testing.assert_allclose(rows['iwae_dreg']['gain_standard_error'],
                             gain.std(ddof=1) / 10)
  np.testing.assert_allclose(rows['vae']['nll'], -per_example['vae'].mean())
  assert '| iwae_dreg |' in (out / 'leaderboard.md').read_text()
  # The training CPU time is the one summed over resumptions.
  cpu = json.loads((out / 'vae' / 'train_cpu.json').read_text())
  assert cpu['processes'] == 1 and cpu['cpu_seconds'] > 0
  np.testing.assert_allclose(rows['vae']['train_cpu_minutes'],
                             cpu['cpu_seconds'] / 60)
  # A second run finds both results and trains nothing.
  again = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         check=False)
  assert again.returncode == 0 and 'training on' not in again.stdout
  assert board['pending'] == [] and board['epochs'] == 1
  # Nor is a result of another protocol mixed into the table.
  other = subprocess.run([a.replace('--epochs=1', '--epochs=2') for a in cmd],
                         capture_output=True, text=True, timeout=120,
                         check=False)
  assert other.returncode != 0
  assert "another protocol" in other.stderr and "'epochs': (1, 2)" in (
      other.stderr)


def test_leaderboard_passes_sigterm_on_and_starts_no_other_member(
    tmp_path, shared_data):
  # A session's end: the members checkpoint the step they reached, the
  # pending ones never start, the table holds the members done, and the
  # command exits with 128 + 15.
  from aefamily.training import checkpoints
  out = tmp_path / 'board'
  proc = subprocess.Popen(
      [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
       f'--output_dir={out}', '--members=vae,iwae,iwae_dreg', '--epochs=3',
       '--parallel=1', '--eval_samples=10', '--max_test_examples=100',
       f'--data_dir={shared_data / "binarized_mnist"}'],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  metrics = out / 'iwae' / 'metrics.jsonl'
  deadline = time.monotonic() + 300
  while not (metrics.exists() and metrics.read_text().strip()):
    assert proc.poll() is None and time.monotonic() < deadline
    time.sleep(0.1)
  proc.send_signal(signal.SIGTERM)
  stdout, _ = proc.communicate(timeout=300)
  assert proc.returncode == 128 + signal.SIGTERM, stdout
  assert 'vae: done' in stdout and 'iwae: stopped' in stdout, stdout
  assert 'iwae_dreg' not in stdout, stdout
  log = (out / 'iwae.log').read_text()
  stopped = int(re.search(r'SIGTERM: stopped at step (\d+)', log).group(1))
  assert checkpoints.manager(str(out / 'iwae')).latest_step() == stopped
  assert not (out / 'iwae' / 'member.json').exists()
  board = (out / 'leaderboard.md').read_text()
  assert '| vae |' in board and '| iwae |' not in board, board
  assert '1 of 3 members; still to run: iwae, iwae_dreg.' in board, board


def test_leaderboard_refuses_an_unknown_member():
  proc = subprocess.run(
      [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
       '--members=vae,vqvae', '--output_dir=/nonexistent/never'],
      capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode != 0
  assert "unknown member 'vqvae'" in proc.stderr


def test_code_shaping_tables_average_seeds_and_compare_with_the_beta_vae(
    tmp_path):
  from aefamily.image_grids import save_image_grid
  runs = tmp_path / 'runs'

  def run(name, **results):
    (runs / name).mkdir(parents=True)
    (runs / name / 'eval_test.json').write_text(json.dumps(results))
    return runs / name

  recon = {'reconstruction_nll': 240.0, 'reconstruction_nll_standard_error':
           0.8, 'squared_error': 20.0, 'squared_error_standard_error': 0.1}
  for member, fd in (('vae', 60.0), ('vqvae', 30.0)):
    path = run(f'fm_{member}', frechet_distance=fd,
               frechet_distance_floor=2.5, train_cpu_seconds=600.0, **recon)
    save_image_grid(str(path / 'samples.png'), np.zeros((64, 784)), (28, 28))
  mig = {'betavae': [0.10, 0.20, 0.30], 'betatcvae': [0.40, 0.50, 0.60]}
  for member, values in mig.items():
    for seed, value in enumerate(values):
      path = run(f'sp_{member}_s{seed}', mig=value, factor_vae_score=0.5,
                 train_cpu_seconds=120.0)
      if seed == 0:
        save_image_grid(str(path / 'traversals.png'),
                        np.zeros((100, 4096)), (64, 64), num_columns=10)
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'aefamily.benchmarks.code_shaping',
       f'--runs={runs}', f'--output_dir={out}'],
      capture_output=True, text=True, cwd=os.path.dirname(REPO), check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  tables = json.loads((out / 'code_shaping.json').read_text())
  assert [r['member'] for r in tables['fashion_mnist']] == ['vae', 'vqvae']
  assert tables['fashion_mnist'][1]['train_cpu_minutes'] == 10.0
  tcvae = {r['member']: r for r in tables['sprites']}['betatcvae']
  # Means 0.5 and 0.2, each with standard error 0.1/√3 (s = 0.1, n = 3).
  assert tcvae['mig'] == pytest.approx(0.5)
  assert tcvae['mig_standard_error'] == pytest.approx(0.1 / np.sqrt(3))
  assert tcvae['mig_minus_betavae'] == pytest.approx(0.3)
  assert tcvae['mig_minus_betavae_standard_error'] == pytest.approx(
      np.sqrt(2 / 3) * 0.1)
  text = (out / 'code_shaping.md').read_text()
  assert '+0.300 ± 0.082 (beyond 2 SE)' in text
  assert '| training images (the floor) | | 2.50 |' in text
  assert '| VQ-VAE | 1 | 30.0 |' in text  # one seed: the bootstrap SE's
  assert (out / 'fashion_samples.png').exists()
  assert (out / 'sprites_traversals.png').exists()


def test_code_shaping_fashion_rows_average_seeds(tmp_path):
  # Run as a command: the module's flags clash with the leaderboard's.
  from aefamily.image_grids import save_image_grid
  runs = tmp_path / 'runs'
  fd, recon = [60.0, 50.0, 58.0], [240.0, 236.0, 239.0]
  for seed, name in enumerate(['fm_vae', 'fm_vae_s1', 'fm_vae_s2']):
    (runs / name).mkdir(parents=True)
    (runs / name / 'eval_test.json').write_text(json.dumps({
        'frechet_distance': fd[seed], 'frechet_distance_standard_error': 1.0,
        'frechet_distance_floor': 2.5, 'reconstruction_nll': recon[seed],
        'reconstruction_nll_standard_error': 0.8, 'squared_error': 20.0,
        'squared_error_standard_error': 0.1,
        'train_cpu_seconds': 60.0 * (seed + 1)}))
    save_image_grid(str(runs / name / 'samples.png'), np.zeros((64, 784)),
                    (28, 28))

  def tables(*flags):
    out = tmp_path / f'out{len(flags)}'
    proc = subprocess.run(
        [sys.executable, '-m', 'aefamily.benchmarks.code_shaping',
         f'--runs={runs}', f'--output_dir={out}', *flags],
        capture_output=True, text=True, cwd=os.path.dirname(REPO),
        check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (json.loads((out / 'code_shaping.json').read_text())
            ['fashion_mnist'], (out / 'code_shaping.md').read_text())

  (row,), text = tables('--seeds=0,1,2')
  assert row['seeds'] == [0, 1, 2]
  assert row['frechet_distance'] == pytest.approx(np.mean(fd))
  assert row['frechet_distance_standard_error'] == pytest.approx(
      np.std(fd, ddof=1) / np.sqrt(3))
  assert row['reconstruction_nll_standard_error'] == pytest.approx(
      np.std(recon, ddof=1) / np.sqrt(3))
  assert row['squared_error_standard_error'] == pytest.approx(0.0)
  assert row['train_cpu_minutes'] == pytest.approx(2.0)
  # 56.0 ± 3.06 over the 3 seeds, not ± the bootstrap's 1.0.
  assert '| VAE | 3 | 56.0 ± 3.1 | 238.3 ± 1.2 |' in text, text
  (one,), text = tables()  # the default: seed 0, fm_vae
  assert one['seeds'] == [0] and one['frechet_distance_standard_error'] == 1.0
  assert '| VAE | 1 | 60.0 ± 1.0 |' in text, text


@pytest.mark.parametrize('damage', ['truncated json', 'no npz', 'no field'])
def test_leaderboard_table_names_a_member_whose_result_is_unreadable(
    tmp_path, damage):
  from aefamily.benchmarks import leaderboard
  member = tmp_path / 'vae'
  member.mkdir()
  result = {'results': {}, 'train_cpu_seconds': 1.0, 'eval_cpu_seconds': 1.0}
  text = json.dumps(result)
  if damage == 'truncated json':
    text = text[:10]
  if damage == 'no field':  # a result without its test NLL
    text = json.dumps({**result, 'results': {'elbo': -90.0}})
  (member / 'member.json').write_text(text)
  if damage != 'no npz':
    np.savez(member / 'eval_test_per_example.npz',
             log_likelihood=np.zeros(3))
  with pytest.raises(ValueError, match=r"member 'vae': unreadable result in "):
    leaderboard.table(['vae'], str(tmp_path))


def test_every_leaderboard_member_is_a_valid_config_of_the_protocol():
  from aefamily.benchmarks import leaderboard
  for name in leaderboard.MEMBERS:
    config = leaderboard.member_config(
        name, epochs=3, eval_samples=10, max_test_examples=0,
        data_dir='unused', seed=0)
    settings = experiment.validate_config(config, num_devices=1)
    assert config.batch_size == leaderboard.BATCH, name
    assert config.num_epochs == 3, name
    if name.startswith('vampprior'):
      assert settings.model.num_pseudo_inputs == 500, name
  combined = experiment.validate_config(leaderboard.member_config(
      'vampprior_iwae_stl', epochs=3, eval_samples=10, max_test_examples=0,
      data_dir='unused', seed=0), num_devices=1)
  assert combined.num_samples == 5 and combined.gradient == 'stl'


def test_the_prepared_accelerator_run_writes_every_row(tmp_path):
  from aefamily.benchmarks import accelerator  # pylint: disable=g-import-not-at-top
  # The run's own flags, at a size for the suite.
  tiny = [a for a in accelerator.PERFORMANCE
          if not a.startswith(('--batch_sizes', '--families', '--rounds',
                               '--iwae_examples', '--steps_per_call'))]
  accelerator.run_all(str(tmp_path), tiny + [
      '--families=vae', '--batch_sizes=10', '--steps=2', '--rounds=1',
      '--iwae_examples=0', '--steps_per_call=1,2', '--torch=none'],
                      whole_run_args=None)
  assert 'jax' in (tmp_path / 'machine.txt').read_text()
  rows = json.loads((tmp_path / 'performance' / 'performance.json').read_text())
  whats = [(r['what'], r['steps_per_call']) for r in rows['rows']]
  assert whats == [('vae train step', 1), ('vae train step', 2),
                   ('vae train step (bfloat16)', 1),
                   ('vae train step (bfloat16)', 2)]
