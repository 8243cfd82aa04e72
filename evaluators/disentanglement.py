"""The disentanglement of codes of the sprites, whose factors are known:
MIG and the FactorVAE metric (`diagnostics.disentanglement`)."""

import dataclasses

import numpy as np

from aefamily.diagnostics import disentanglement
from aefamily.input_pipeline import sprites
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class DisentanglementEval:
  """config.eval fields of the disentanglement metrics on sprites: the
  votes of the FactorVAE metric (disentanglement_lib's defaults)."""
  factor_vae_train_votes: int = 10_000
  factor_vae_eval_votes: int = 5_000
  factor_vae_variance_examples: int = 10_000

  def __post_init__(self):
    check(min(self.factor_vae_train_votes, self.factor_vae_eval_votes,
              self.factor_vae_variance_examples) >= 1,
          'config.eval.factor_vae_* must be >= 1')


def evaluate_sprites(config, encode, images: np.ndarray) -> dict:
  """MIG on the evaluated sprites and the FactorVAE metric on fresh ones.

  Args:
    config: the run's config (config.eval.split, config.seed, and
      config.eval.factor_vae_* where the family declares them, else their
      defaults).
    encode: images [n, 4096] -> codes [n, d], e.g. the means of q(z | x).
    images: the first rows of config.eval.split of the sprites.

  Returns:
    {'mig', 'mig_per_factor', 'factor_vae_score' and its
    '_standard_error'}; {} unless config.dataset is 'sprites'.
  """
  if config.dataset != 'sprites' or images.shape[1] != sprites.IMAGE_SIZE**2:
    return {}   # other data (or in-memory data under a sprites config)
  # A family that does not declare the fields gets their defaults.
  votes = {f.name: config.eval.get(f.name, f.default)
           for f in dataclasses.fields(DisentanglementEval)}
  factors = sprites.sprites_factors(config.eval.split)[:images.shape[0]]
  codes = np.asarray(encode(images))
  gaps = disentanglement.mig(codes, factors)
  score = disentanglement.factor_vae_score(
      encode, sprites.images_of_factors, list(sprites.FACTOR_SIZES.values()),
      seed=config.seed, num_train_votes=votes['factor_vae_train_votes'],
      num_eval_votes=votes['factor_vae_eval_votes'],
      num_variance_examples=votes['factor_vae_variance_examples'])
  return {'mig': float(gaps['mig']),
          'mig_per_factor': np.asarray(gaps['per_factor_gap']).tolist(),
          'factor_vae_score': float(score['accuracy']),
          'factor_vae_score_standard_error': float(
              score['accuracy_standard_error'])}
