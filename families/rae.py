"""The regularized autoencoder, RAE (Ghosh et al. 2020), with ex-post
density estimation.

Family 'rae'. Config fields: config.model (`families.adversarial.CodeModel`,
without its discriminator), config.code_weight (β), config.decoder_penalty
and config.penalty_weight (λ) (`objectives.rae`), config.eval.ex_post_components.
eval.py measures the reconstruction and the codes
(`evaluators.code_shaping`), and draws its samples from a Gaussian mixture
fitted to the training codes (Ghosh et al. 2020, §4: 10 components with
full covariances), whose mean log-density of the test codes it reports.
"""

import dataclasses
import functools
from typing import Literal

import jax
import numpy as np

from aefamily.evaluators import code_shaping as code_shaping_evaluator
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.families.adversarial import build_autoencoder
from aefamily.families.adversarial import CodeModel
from aefamily.objectives.rae import DECODER_PENALTIES
from aefamily.objectives.rae import rae_loss
from aefamily.training import experiment
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class RAEEval(SampleQualityEval):
  """config.eval of an RAE: the components of the ex-post Gaussian mixture,
  and the sample-quality fields."""
  ex_post_components: int = 10

  def __post_init__(self):
    super().__post_init__()
    check(self.ex_post_components >= 1, 'config.eval.ex_post_components must '
          f'be >= 1, got {self.ex_post_components}')


@dataclasses.dataclass(frozen=True)
class RAESettings:
  """Family 'rae': RAE-GP by default (the decoder's Jacobian penalized)."""
  model: CodeModel = CodeModel(code_dim=16)
  code_weight: float = 1e-4
  decoder_penalty: Literal[DECODER_PENALTIES] = 'gradient'
  penalty_weight: float = 1e-2
  eval: RAEEval = RAEEval()

  def __post_init__(self):
    check(self.code_weight >= 0 and self.penalty_weight >= 0,
          'config.code_weight and config.penalty_weight must be >= 0')


def fit_ex_post_density(codes: np.ndarray, num_components: int,
                        seed: int = 0) -> 'sklearn.mixture.GaussianMixture':
  """A Gaussian mixture with full covariances fitted by EM to training
  codes [N, d] (Ghosh et al. 2020, §4)."""
  # Imported here, not with the family: every training run imports the
  # families, and scikit-learn takes a quarter second to import.
  from sklearn import mixture  # pylint: disable=g-import-not-at-top
  return mixture.GaussianMixture(num_components, covariance_type='full',
                                 random_state=seed).fit(codes)


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """`evaluators.code_shaping.evaluate`, its samples decoded from the
  ex-post mixture fitted to the training split's codes (read from
  config.dataset)."""
  train_split = experiment.load_split(config, 'train')
  density = fit_ex_post_density(
      code_shaping_evaluator.encode(model, variables, train_split.images),
      config.eval.ex_post_components, seed=config.seed)

  def sample(key, n):
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    density.random_state = seed
    codes = density.sample(n)[0]  # grouped by component: shuffled
    return np.asarray(np.random.default_rng(seed).permutation(codes),
                      np.float32)

  results = code_shaping_evaluator.evaluate(
      config, model, variables, images, rng, image_shape=image_shape,
      workdir=workdir, code_sampler=sample)
  test_codes = code_shaping_evaluator.encode(model, variables, images)
  results['ex_post_components'] = config.eval.ex_post_components
  results['ex_post_test_code_log_density'] = float(
      density.score(test_codes))
  return results


registry.register(registry.Family(
    name='rae', settings=RAESettings,
    build_model=lambda s, train: build_autoencoder(s.model, train),
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=lambda s, model: functools.partial(
        rae_loss, model=model, code_weight=s.code_weight,
        decoder_penalty=s.decoder_penalty, penalty_weight=s.penalty_weight),
    evaluate=evaluate))
