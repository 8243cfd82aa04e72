"""The model families, each declared in one module and registered there.

Importing this package registers the library's families in
`training.registry`:

  vae, iwae, hvae, miwae, ciwae, piwae, infovae
                 families/vae.py          the VAE family
  dga            families/dga.py          DGA stages and greedy stacks
  dae, cae       families/autoencoder.py  denoising (walk-back), contractive
  gsn, hybrid_gsn  families/gsn.py        generative stochastic networks
  sbn            families/sbn.py          sigmoid belief nets (REINFORCE…)
  nade, made, fvsbn  families/autoregressive.py  NADE, MADE, logistic FVSBN
                 (exact likelihood)
  target_prop    families/target_prop.py  target propagation
  classifier     families/classifier.py   MLP classifier
  aae            families/adversarial.py  adversarial autoencoder (a game)
  wae            families/wae.py          Wasserstein autoencoder (MMD)
  rae            families/rae.py          regularized autoencoder (RAE)
  factorvae      families/factorvae.py    FactorVAE (a game)
  gmmn           families/gmmn.py         generative moment matching networks
                 (data space, or an autoencoder's code space)
  gan            families/gan.py          generative adversarial network (a game)
  vqvae          families/vqvae.py        VQ-VAE
  diffusion      families/diffusion.py    Gaussian diffusion (variational,
                 discrete or continuous time)

A new family is one module like these (its settings dataclass, model
builder, initializer, loss binding and evaluator, and one
`registry.register` call) and one import line below.
"""

from aefamily.families import adversarial
from aefamily.families import autoencoder
from aefamily.families import autoregressive
from aefamily.families import classifier
from aefamily.families import dga
from aefamily.families import diffusion
from aefamily.families import factorvae
from aefamily.families import gmmn
from aefamily.families import gan
from aefamily.families import gsn
from aefamily.families import rae
from aefamily.families import sbn
from aefamily.families import target_prop
from aefamily.families import vae
from aefamily.families import vqvae
from aefamily.families import wae
