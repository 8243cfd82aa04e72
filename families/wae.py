"""The Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018).

Family 'wae'. Config fields: config.model (`families.adversarial.CodeModel`,
without its discriminator), config.penalty_weight (λ), config.cost and
config.prior_variance. One player: the loss is `objectives.wae.wae_loss`.
eval.py measures the reconstruction and the codes
(`evaluators.code_shaping`), and decodes samples from the prior the loss
trained against, N(0, config.prior_variance · I).
"""

import dataclasses
import functools
from typing import Literal

from aefamily.evaluators import code_shaping as code_shaping_evaluator
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.families.adversarial import build_autoencoder
from aefamily.families.adversarial import CodeModel
from aefamily.objectives.wae import COSTS
from aefamily.objectives.wae import wae_loss
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class WAESettings:
  """Family 'wae': λ = 10, the squared-error cost and σ² = 1, as the paper
  on MNIST (Tolstikhin et al. 2018, §4)."""
  model: CodeModel = CodeModel()
  penalty_weight: float = 10.0
  cost: Literal[COSTS] = 'squared_error'
  prior_variance: float = 1.0
  eval: SampleQualityEval = SampleQualityEval()

  def __post_init__(self):
    check(self.penalty_weight >= 0, 'config.penalty_weight must be >= 0, '
          f'got {self.penalty_weight}')
    check(self.prior_variance > 0, 'config.prior_variance must be > 0, got '
          f'{self.prior_variance}')


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """`evaluators.code_shaping.evaluate` with the prior of the loss,
  N(0, config.prior_variance · I): samples.png and the Fréchet distance
  decode its draws, and 'code_variance' is to be read against σ²."""
  return code_shaping_evaluator.evaluate(
      config, model, variables, images, rng, image_shape=image_shape,
      workdir=workdir, prior_variance=config.prior_variance)


registry.register(registry.Family(
    name='wae', settings=WAESettings,
    build_model=lambda s, train: build_autoencoder(s.model, train),
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=lambda s, model: functools.partial(
        wae_loss, model=model, penalty_weight=s.penalty_weight, cost=s.cost,
        prior_variance=s.prior_variance),
    evaluate=evaluate))
