"""The classifier: its typed settings, parsed from its config, and its loss."""
import functools

import jax

import aefamily.families  # registers the families by name
from aefamily.configs import fashion_mnist_classifier
from aefamily.models.classifier import Classifier
from aefamily.objectives.classification import cross_entropy_loss
from aefamily.training.experiment import family_settings

# The config is parsed into the family's frozen settings dataclass; an
# unknown or mistyped field would fail here, naming it.
config = fashion_mnist_classifier.get_config()
settings = family_settings(config)
print(settings)

m = settings.model
model = Classifier(data_dim=784, num_classes=m.num_classes, hidden=m.hidden,
                   activation=m.activation)
key_x, key_y, key_init = jax.random.split(jax.random.key(0), 3)
batch = {'image': jax.random.uniform(key_x, (32, 784)),
         'label': jax.random.randint(key_y, (32,), 0, 10)}
params = jax.jit(model.init)(key_init, batch['image'])
loss_fn = functools.partial(cross_entropy_loss, model=model)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, batch, jax.random.key(1))
print(f"cross-entropy {loss:.3f} nats, accuracy {aux.metrics['accuracy']:.2f}")

config.model.hiden = (256,)  # misspelt
try:
  family_settings(config)
except ValueError as error:
  print(error)
else:
  raise AssertionError('a misspelt field was accepted')
