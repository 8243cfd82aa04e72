"""An MLP classifier: the labeller of DAE chain samples.

Config fields: config.model (`ClassifierModel`). Trained by the
cross-entropy; eval.py reports the test accuracy (`evaluators.classifier`).
"""

import dataclasses
import functools

from aefamily.evaluators import classifier as classifier_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.models.classifier import Classifier
from aefamily.objectives.classification import cross_entropy_loss


@dataclasses.dataclass(frozen=True)
class ClassifierModel:
  """config.model of a classifier: hidden widths, activation, classes."""
  hidden: tuple[int, ...] = (512, 512)
  activation: Activation = 'relu'
  num_classes: int = 10

  def __post_init__(self):
    check(self.num_classes >= 2,
          f'config.model.num_classes must be >= 2, got {self.num_classes}')


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
  """Family 'classifier'."""
  model: ClassifierModel = ClassifierModel()


def build_classifier(settings: ClassifierSettings, train: Split) -> Classifier:
  """The MLP classifier of settings.model."""
  m = settings.model
  return Classifier(data_dim=train.images.shape[1], num_classes=m.num_classes,
                    hidden=m.hidden, activation=m.activation)


registry.register(registry.Family(
    name='classifier', settings=ClassifierSettings,
    build_model=build_classifier,
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=lambda s, model: functools.partial(cross_entropy_loss,
                                                  model=model),
    evaluate=classifier_evaluator.evaluate))
