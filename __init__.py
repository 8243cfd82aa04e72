"""aefamily: the autoencoder family in JAX, as pure functions.

Import what you need from its subpackages, for example

  from aefamily.objectives.vae import iwae_loss

`models` holds flax.linen modules, `objectives` the losses and gradient
estimators, `samplers` the sampling procedures, `likelihood` the
log-likelihood estimators; `train` and `eval` are the command lines
(`python -m aefamily.train`, `python -m aefamily.eval`).
"""

__version__ = '0.2.0'
