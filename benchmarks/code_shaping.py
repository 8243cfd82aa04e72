r"""The tables of the autoencoders that shape their code, from their runs.

  python -m aefamily.benchmarks.code_shaping --runs=runs \
      --output_dir=runs/code_shaping

Reads the evaluated runs (`train.py`, then `eval.py` with
--config.eval.classifier_workdir for the Fashion-MNIST members) in
--runs, named by convention:

* `fm_<member>` for each Fashion-MNIST member
  (configs/fashion_mnist_<member>.py; `fm_infovae_l100`: the InfoVAE's
  with --config.divergence_weight=100; `fm_gmmn_ae` with
  --config.autoencoder_workdir=<runs>/fm_rae; the GAN and the GMMNs have no
  encoder, so no reconstruction): the classifier-feature Fréchet
  distance of 10,000 samples to the test images ± its bootstrap standard
  error (the training images' distance is its floor), the test
  reconstruction −log p(x | x̂) and squared error, each ± its standard
  error over test images, and the training CPU time;
* `sp_<member>_s<seed>` for each sprites member and seed: MIG and the
  FactorVAE metric, mean ± standard error over the seeds found, and each
  member's difference from the β-VAE (difference of the seed means, ± the
  standard error of that difference: the two sets of runs are independent).

Training seeds: --seeds=0,1,2 reads, besides `fm_<member>` (the committed
configs' seed 0), the run `fm_<member>_s<seed>` of each other seed (trained
with --config.seed=<seed>). A Fashion-MNIST row's "seeds" column says how
many of them it found. With one seed, its ± are as above; with S >= 2, each
value is the mean over the seeds ± sd / √S over them (the standard error of
a training run's outcome, which the bootstrap and the test images leave
out), and the CPU time is per seed. --seeds also restricts the sprites runs
read to those seeds (by default every seed found).

Members without a run are left out. Writes code_shaping.md and .json
atomically, and two figures: the members' samples on Fashion-MNIST
(fashion_samples.png) and the latent traversals of seed 0 on sprites
(sprites_traversals.png).
"""

import json
import math
import os
import re

from absl import app
from absl import flags
try:
  import matplotlib  # pylint: disable=g-import-not-at-top
except ImportError as e:  # the 'benchmarks' extra, not the core install
  raise ImportError(f'aefamily.benchmarks.code_shaping needs matplotlib ({e}): '
                    'pip install "aefamily[benchmarks]"') from None
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from PIL import Image

from aefamily.training import metrics as metrics_lib

FASHION_MEMBERS = ('vae', 'betavae', 'infovae', 'infovae_l100', 'betatcvae',
                   'factorvae', 'wae', 'rae', 'aae', 'vqvae',
                   # generators without an encoder: no reconstruction columns
                   'gan', 'gmmn', 'gmmn_ae')
SPRITES_MEMBERS = ('vae', 'betavae', 'betatcvae', 'factorvae')
NAMES = {'vae': 'VAE', 'betavae': 'β-VAE', 'infovae': 'InfoVAE-MMD',
         'infovae_l100': 'InfoVAE-MMD, λ = 100',
         'betatcvae': 'β-TCVAE', 'factorvae': 'FactorVAE', 'wae': 'WAE-MMD',
         'rae': 'RAE-GP', 'aae': 'AAE', 'vqvae': 'VQ-VAE',
         'gan': 'GAN (non-saturating)', 'gmmn': 'GMMN',
         'gmmn_ae': 'GMMN+AE (RAE codes)'}

_RUNS = flags.DEFINE_string('runs', 'runs', 'The directory of the runs.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'runs/code_shaping',
                                  'Where the tables and figures go.')
_SEEDS = flags.DEFINE_list(
    'seeds', None, 'Training seeds to read: Fashion-MNIST fm_<member> (seed '
    '0) and fm_<member>_s<seed>; sprites sp_<member>_s<seed>. Default: seed '
    '0 of Fashion-MNIST and every sprites seed found.')
FASHION_SEED = 0  # the committed configs' seed: the run fm_<member>


def fashion_run(member: str, seed: int) -> str:
  """The directory name of a Fashion-MNIST member's run of `seed`."""
  return f'fm_{member}' if seed == FASHION_SEED else f'fm_{member}_s{seed}'


def _load(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def mean_and_standard_error(values) -> tuple[float, float]:
  """The mean and its standard error s / √n (None for n < 2)."""
  v = np.asarray(values, np.float64)
  se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
  return float(v.mean()), se


def _minutes(results: list[dict]) -> float | None:
  """The mean training CPU time in minutes (None when not recorded)."""
  seconds = [r['train_cpu_seconds'] for r in results
             if 'train_cpu_seconds' in r]
  return float(np.mean(seconds)) / 60 if seconds else None


_FASHION_VALUES = (('frechet_distance', 'frechet_distance_standard_error'),
                  ('reconstruction_nll', 'reconstruction_nll_standard_error'),
                  ('squared_error', 'squared_error_standard_error'))


def fashion_rows(runs: str, seeds: list[int] | None = None) -> list[dict]:
  """One row per Fashion-MNIST member with an evaluated run of `seeds`.

  Args:
    runs: the directory of the runs, `fashion_run(member, seed)` each.
    seeds: the training seeds to read (default [FASHION_SEED]).

  Returns:
    Per member: 'seeds' (those found), the Fréchet distance, reconstruction
    −log p(x | x̂) (nats) and squared error, each with its
    '_standard_error' (bootstrap or over test images for one seed; over the
    seeds, sd / √S, for S >= 2, with the per-seed values in '_per_seed'),
    the floor, the uniform-prior distance (means over seeds), and the
    training CPU minutes per seed.
  """
  rows = []
  for member in FASHION_MEMBERS:
    found = {}
    for seed in [FASHION_SEED] if seeds is None else seeds:
      r = _load(os.path.join(runs, fashion_run(member, seed),
                             'eval_test.json'))
      if r is not None:
        found[seed] = r
    if not found:
      continue
    results = list(found.values())
    row = {'member': member, 'seeds': list(found)}
    for key, se_key in _FASHION_VALUES:
      values = [r.get(key) for r in results]
      if len(results) == 1:
        row[key], row[se_key] = values[0], results[0].get(se_key)
      elif None in values:
        row[key] = row[se_key] = None
      else:
        row[key], row[se_key] = mean_and_standard_error(values)
        row[f'{key}_per_seed'] = values
    for key in ('frechet_distance_floor', 'frechet_distance_uniform_prior'):
      values = [r.get(key) for r in results]
      row[key] = None if None in values else float(np.mean(values))
    row['train_cpu_minutes'] = _minutes(results)
    rows.append(row)
  return rows


def sprites_rows(runs: str, seeds: list[int] | None = None) -> list[dict]:
  """One row per sprites member with evaluated seeds: MIG and the FactorVAE
  metric over its seeds (those of `seeds`, or all found), and their
  differences from the β-VAE's."""
  per_member = {}
  for member in SPRITES_MEMBERS:
    found = {}
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
      match = re.fullmatch(rf'sp_{member}_s(\d+)', name)
      r = match and _load(os.path.join(runs, name, 'eval_test.json'))
      if r and (seeds is None or int(match.group(1)) in seeds):
        found[int(match.group(1))] = r
    if found:
      per_member[member] = found
  rows = []
  for member, found in per_member.items():
    row = {'member': member, 'seeds': sorted(found),
           'train_cpu_minutes': _minutes(list(found.values()))}
    for metric in ('mig', 'factor_vae_score'):
      values = [r[metric] for r in found.values()]
      row[metric], row[f'{metric}_standard_error'] = (
          mean_and_standard_error(values))
      row[f'{metric}_values'] = values
    rows.append(row)
  base = next((r for r in rows if r['member'] == 'betavae'), None)
  for row in rows:
    if base is None or row is base or None in (
        row['mig_standard_error'], base['mig_standard_error']):
      continue
    for metric in ('mig', 'factor_vae_score'):
      row[f'{metric}_minus_betavae'] = row[metric] - base[metric]
      row[f'{metric}_minus_betavae_standard_error'] = math.hypot(
          row[f'{metric}_standard_error'], base[f'{metric}_standard_error'])
  return rows


def _pm(value, se, digits=1):
  if value is None:
    return '—'
  return f'{value:.{digits}f}' + ('' if se is None else f' ± {se:.{digits}f}')


def _cpu(minutes):
  return '—' if minutes is None else f'{minutes:.1f} min'


def markdown(fashion: list[dict], sprites: list[dict]) -> str:
  """The two tables in Markdown."""
  lines = ['Fashion-MNIST (test set): classifier-feature Fréchet distance '
           'of 10,000 samples to the 10,000 test images, ± its bootstrap '
           'standard error (lower is better; the training images\' '
           'distance is the floor); reconstruction ± standard error over '
           'the test images. A row of 2 or more seeds: means over its '
           'seeds ± their standard error over seeds, CPU per seed.', '',
           '| member | seeds | Fréchet distance | −log p(x \\| x̂), nats | '
           'squared error | train CPU |', '|---|---|---|---|---|---|']
  for r in fashion:
    fd = _pm(r['frechet_distance'], r['frechet_distance_standard_error'])
    if r['frechet_distance_uniform_prior'] is not None:
      fd += (f' (uniform prior over the codes: '
             f'{r["frechet_distance_uniform_prior"]:.1f})')
    lines.append(
        f'| {NAMES[r["member"]]} | {len(r["seeds"])} | {fd} | '
        f'{_pm(r["reconstruction_nll"], r["reconstruction_nll_standard_error"])}'
        f' | {_pm(r["squared_error"], r["squared_error_standard_error"], 2)} | '
        f'{_cpu(r["train_cpu_minutes"])} |')
  floors = [r['frechet_distance_floor'] for r in fashion
            if r['frechet_distance_floor'] is not None]
  if floors:
    lines.append(f'| training images (the floor) | | {floors[0]:.2f} | | | |')
  lines += ['', 'Sprites (10,000 test sprites; mean ± standard error over '
            'the seeds; the difference from the β-VAE is marked when it '
            'exceeds 2 standard errors).', '',
            '| member | seeds | MIG | FactorVAE metric | MIG − β-VAE | '
            'FactorVAE metric − β-VAE | train CPU per seed |',
            '|---|---|---|---|---|---|---|']
  for r in sprites:
    diffs = []
    for metric in ('mig', 'factor_vae_score'):
      key = f'{metric}_minus_betavae'
      if key not in r:
        diffs.append('—')
        continue
      d, se = r[key], r[f'{key}_standard_error']
      diffs.append(f'{d:+.3f} ± {se:.3f}'
                   f'{" (beyond 2 SE)" if abs(d) > 2 * se else ""}')
    lines.append(
        f'| {NAMES[r["member"]]} | {len(r["seeds"])} | '
        f'{_pm(r["mig"], r["mig_standard_error"], 3)} | '
        f'{_pm(r["factor_vae_score"], r["factor_vae_score_standard_error"], 3)}'
        f' | {diffs[0]} | {diffs[1]} | {_cpu(r["train_cpu_minutes"])} |')
  return '\n'.join(lines) + '\n'


def _grid_rows(path: str, tile: int, rows: int) -> np.ndarray:
  """The top `rows` rows of tiles of a PNG grid of `image_grids`."""
  image = np.asarray(Image.open(path))
  scale = image.shape[1] // (8 * (tile + 1) + 1)
  return image[:(1 + rows * (tile + 1)) * scale]


def save_figures(runs: str, output_dir: str, fashion: list[dict],
                 sprites: list[dict]) -> None:
  """fashion_samples.png (2 rows of each member's samples, of its first
  seed) and sprites_traversals.png (seed 0's traversals)."""
  if fashion:
    fig, axes = plt.subplots(len(fashion), 1, squeeze=False,
                             figsize=(6, 1.55 * len(fashion)))
    for ax, r in zip(axes[:, 0], fashion):
      run = fashion_run(r['member'], r['seeds'][0])  # its first seed's
      ax.imshow(_grid_rows(os.path.join(runs, run, 'samples.png'), 28, 2),
                cmap='gray')
      ax.set_title(NAMES[r['member']], fontsize=10)
      ax.axis('off')
    fig.tight_layout()
    _save(fig, os.path.join(output_dir, 'fashion_samples.png'))
  panels = [r for r in sprites if os.path.exists(os.path.join(
      runs, f'sp_{r["member"]}_s0', 'traversals.png'))]
  if panels:
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(4 * len(panels), 4.3))
    for ax, r in zip(axes[0], panels):
      ax.imshow(Image.open(os.path.join(runs, f'sp_{r["member"]}_s0',
                                        'traversals.png')), cmap='gray')
      ax.set_title(NAMES[r['member']], fontsize=11)
      ax.axis('off')
    fig.tight_layout()
    _save(fig, os.path.join(output_dir, 'sprites_traversals.png'))


def _save(fig, path: str) -> None:
  tmp = f'{path}.tmp{os.getpid()}.png'
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, path)


def main(argv):
  del argv
  runs, out = _RUNS.value, _OUTPUT_DIR.value
  if not os.path.isdir(runs):
    raise app.UsageError(f'--runs={runs} is not a directory')
  try:
    seeds = None if _SEEDS.value is None else [int(s) for s in _SEEDS.value]
  except ValueError as e:
    raise app.UsageError(f'--seeds={",".join(_SEEDS.value)}: {e}') from e
  if seeds is not None and len(set(seeds)) != len(seeds):
    raise app.UsageError(f'--seeds={",".join(_SEEDS.value)} repeats a seed')
  fashion, sprites = fashion_rows(runs, seeds), sprites_rows(runs, seeds)
  if not fashion and not sprites:
    raise app.UsageError(f'no evaluated fm_<member> or sp_<member>_s<seed> '
                         f'run in {runs}')
  os.makedirs(out, exist_ok=True)
  text = markdown(fashion, sprites)
  metrics_lib.write_atomic(os.path.join(out, 'code_shaping.md'), text)
  metrics_lib.write_atomic(
      os.path.join(out, 'code_shaping.json'),
      json.dumps({'fashion_mnist': fashion, 'sprites': sprites}, indent=2)
      + '\n')
  save_figures(runs, out, fashion, sprites)
  print(text)


if __name__ == '__main__':
  app.run(main)
