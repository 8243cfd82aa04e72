"""Training and scoring a VAE on arrays you already hold, in bits/dim."""
import tempfile

import numpy as np

from aefamily import eval as aefamily_eval
from aefamily import train
from aefamily.configs import fashion_mnist_vae_8bit

# Your images: [N, H, W, C] uint8 (or [N, H, W], [N, D]; float in [0, 1]).
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (240, 8, 8, 3), dtype=np.uint8)
data = {'train': images[:200], 'test': images[200:]}   # valid: last 10% of train

config = fashion_mnist_vae_8bit.get_config()   # discretized logistic p(x | z)
config.model.latent_dims, config.model.hidden = (4,), ((32,),)
config.batch_size, config.num_epochs, config.eval_every_epochs = 20, 2, 1
config.eval.num_samples, config.eval.chunk_size = 10, 10

workdir = tempfile.mkdtemp()
train.train_and_evaluate(config, workdir, data=data)
results = aefamily_eval.evaluate(config, workdir, data=data)
print(f"test NLL {results['nll']:.1f} nats = {results['bits_per_dim']:.3f} "
      f"± {results['bits_per_dim_standard_error']:.3f} bits/dim")
