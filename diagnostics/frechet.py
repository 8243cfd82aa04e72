"""The Fréchet distance between two sets of features: a sample-quality score.

The Fréchet (2-Wasserstein) distance between the Gaussians N(μ1, Σ1) and
N(μ2, Σ2) is

  FD = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})

(Dowson & Landau 1982, "The Fréchet distance between multivariate normal
distributions", J. Multivariate Anal. 12). Fitted to the features of real
and of generated images it is the FID of Heusel, Ramsauer, Unterthiner,
Nessler & Hochreiter 2017 ("GANs trained by a two time-scale update rule
converge to a local Nash equilibrium", Eq. 6), whose features are those of
an Inception-v3 network trained on ImageNet.

Here the features are the last hidden layer of the library's own MLP
classifier (`models.classifier.Classifier`, configs/fashion_mnist_classifier:
784-512-512-10, ReLU), so `sample_quality` reports the Fréchet distance in
the feature space of the library's Fashion-MNIST classifier. That is NOT
the Inception FID: its values, in squared units of that classifier's
activations, compare runs scored with the same classifier and sample sizes,
never published FIDs.

Computation (host side, NumPy, float64). Tr((Σ1 Σ2)^{1/2}) is taken
in its symmetric form Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}): Σ1 Σ2 = A (A Σ2)
with A = Σ1^{1/2}, and A (A Σ2) has the eigenvalues of (A Σ2) A = A Σ2 A,
a symmetric positive semi-definite matrix, so the trace is Σ_i √λ_i of
`eigvalsh(A Σ2 A)`, real by construction. (It is also the form in which
the 2-Wasserstein distance between Gaussians is stated in general, and it
stays defined when a singular Σ1 leaves Σ1 Σ2 without a principal square
root.) The FID reference code (TTUR's
fid.py, and pytorch-fid after it) instead takes scipy.linalg.sqrtm(Σ1 Σ2)
of the non-symmetric product: when a covariance is (near) singular, as it
is for a ReLU layer with dead units or for fewer examples than features,
that square root can come out non-finite or complex; the reference code
then retries with 1e-6 I added to both covariances, and drops an imaginary
part it checks to be below 1e-3. The eigendecompositions need neither
patch: eigenvalues that rounding makes slightly negative are set to 0
before their square root.

The plug-in estimate from sample means and covariances is biased upward by
O(1/N) (E‖μ̂1 − μ̂2‖² = ‖μ1 − μ2‖² + Tr Σ1 / N + Tr Σ2 / M exactly, and the
trace term adds its own O(1/N); Chong & Forsyth 2020, "Effectively
unbiased FID and Inception score and where to find them"), so distances
compare only at equal sample sizes.
"""

import functools

import jax
import numpy as np

from aefamily.likelihood.batching import padded_batches

# An eigenvalue of a covariance below −_PSD_TOLERANCE × its largest
# |eigenvalue| is an error, not rounding: float32 arithmetic leaves about
# 1e−7 relative.
_PSD_TOLERANCE = 1e-6


def _check_features(name: str, features) -> np.ndarray:
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f'{name} must be [N >= 2, F], got shape '
                     f'{features.shape}')
  if not np.all(np.isfinite(features)):
    raise ValueError(f'{name} has non-finite values')
  return features


def _check_covariance(name: str, cov) -> np.ndarray:
  """A square, finite, symmetric (to a relative 1e-6) matrix, symmetrized."""
  cov = np.asarray(cov, np.float64)
  if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
    raise ValueError(f'{name} must be a square [F, F] matrix, got shape '
                     f'{cov.shape}')
  if not np.all(np.isfinite(cov)):
    raise ValueError(f'{name} has non-finite values')
  scale = max(np.max(np.abs(cov), initial=0.0), np.finfo(np.float64).tiny)
  if np.max(np.abs(cov - cov.T), initial=0.0) > _PSD_TOLERANCE * scale:
    raise ValueError(f'{name} is not symmetric')
  return (cov + cov.T) / 2.0


def _check_gaussian(name: str, mu, cov) -> tuple[np.ndarray, np.ndarray]:
  mu = np.asarray(mu, np.float64)
  cov = _check_covariance(f'the covariance of {name}', cov)
  if mu.ndim != 1 or cov.shape != (mu.size, mu.size):
    raise ValueError(f'{name}: need a mean [F] and a covariance [F, F], got '
                     f'shapes {mu.shape} and {cov.shape}')
  if not np.all(np.isfinite(mu)):
    raise ValueError(f'the mean of {name} has non-finite values')
  return mu, cov


def _psd_eigh(name: str, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(eigenvalues [F] clipped at 0, eigenvectors [F, F]) of a symmetric PSD
  matrix; ValueError if it has a clearly negative eigenvalue."""
  eigenvalues, eigenvectors = np.linalg.eigh(cov)
  largest = max(np.max(np.abs(eigenvalues)), np.finfo(np.float64).tiny)
  if eigenvalues[0] < -_PSD_TOLERANCE * largest:
    raise ValueError(f'{name}: the covariance is not positive semi-definite '
                     f'(eigenvalue {eigenvalues[0]:.3g})')
  return np.maximum(eigenvalues, 0.0), eigenvectors


def trace_sqrt_product(cov1, cov2) -> float:
  """Tr((Σ1 Σ2)^{1/2}) of two covariances [F, F], [F, F] -> float.

  Computed as Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}) = Σ_i √λ_i, the λ_i the
  eigenvalues of the symmetric PSD Σ1^{1/2} Σ2 Σ1^{1/2} (see the module
  docstring); exact for singular covariances too. In the covariances'
  units (squared feature units).

  Raises:
    ValueError: for shapes other than two [F, F], non-finite values, or a
      matrix that is not symmetric positive semi-definite (to a relative
      1e-6).
  """
  cov1 = _check_covariance('cov1', cov1)
  cov2 = _check_covariance('cov2', cov2)
  if cov1.shape != cov2.shape:
    raise ValueError(f'the covariances have shapes {cov1.shape} and '
                     f'{cov2.shape}')
  values, vectors = _psd_eigh('cov1', cov1)
  _psd_eigh('cov2', cov2)
  root1 = (vectors * np.sqrt(values)) @ vectors.T                 # Σ1^{1/2}
  middle = root1 @ cov2 @ root1
  middle = (middle + middle.T) / 2.0
  return float(np.sum(np.sqrt(np.maximum(np.linalg.eigvalsh(middle), 0.0))))


def gaussian_frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """The Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2).

  FD = ‖μ1 − μ2‖² + Tr Σ1 + Tr Σ2 − 2 Tr((Σ1 Σ2)^{1/2})
  (Dowson & Landau 1982; Heusel et al. 2017, Eq. 6), the squared
  2-Wasserstein distance between the two Gaussians, in float64, with the
  trace term by `trace_sqrt_product`. Mathematically ≥ 0 and symmetric;
  the rounding error that could make it slightly negative is clipped at 0.

  Args:
    mu1, mu2: [F] means.
    cov1, cov2: [F, F] symmetric positive semi-definite covariances.

  Returns:
    FD, in squared units of the features.

  Raises:
    ValueError: for mismatched or wrong shapes, non-finite values, or a
      covariance that is not symmetric positive semi-definite.
  """
  mu1, cov1 = _check_gaussian('the first Gaussian', mu1, cov1)
  mu2, cov2 = _check_gaussian('the second Gaussian', mu2, cov2)
  if mu1.shape != mu2.shape:
    raise ValueError(f'the Gaussians have dimensions {mu1.size} and '
                     f'{mu2.size}')
  diff = mu1 - mu2
  distance = (diff @ diff + np.trace(cov1) + np.trace(cov2)
              - 2.0 * trace_sqrt_product(cov1, cov2))
  return max(float(distance), 0.0)


def frechet_distance(features_a, features_b) -> float:
  """The Fréchet distance between Gaussians fitted to two feature sets.

  The means and covariances (ddof 1, as the FID reference code's np.cov)
  of features_a [N, F] and features_b [M, F], computed in float64, go into
  `gaussian_frechet_distance`. A plug-in estimate, biased upward by O(1/N
  + 1/M) (module docstring): compare values at equal sample sizes.

  Args:
    features_a: [N, F] feature vectors, N ≥ 2.
    features_b: [M, F] feature vectors, M ≥ 2.

  Returns:
    FD ≥ 0, in squared units of the features.

  Raises:
    ValueError: if an input is not [≥ 2, F], the F differ, or a value is not
      finite.
  """
  a = _check_features('features_a', features_a)
  b = _check_features('features_b', features_b)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'the feature sets have different widths: shapes '
                     f'{a.shape} and {b.shape}')
  def cov(x):  # [F, F], also for F = 1 (where np.cov returns a scalar)
    return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
  return gaussian_frechet_distance(a.mean(0), cov(a), b.mean(0), cov(b))


def bootstrap_standard_error(features_a, features_b, *,
                             num_resamples: int = 25, seed: int = 0) -> float:
  """The standard error of `frechet_distance` by the bootstrap.

  Both feature sets are resampled with replacement (Efron & Tibshirani
  1993, ch. 6) num_resamples times; the standard deviation (ddof 1) of the
  resampled distances estimates that of the plug-in FD over draws of the
  samples and of the test images. It measures the estimate's sampling
  noise, not its O(1/N) bias.

  Args:
    features_a: [N, F], features_b: [M, F], as `frechet_distance`.
    num_resamples: B ≥ 2.
    seed: of the resampling.

  Returns:
    The standard error, in the FD's units.

  Raises:
    ValueError: for B < 2, or as `frechet_distance`.
  """
  if num_resamples < 2:
    raise ValueError(f'num_resamples must be >= 2, got {num_resamples}')
  a = _check_features('features_a', features_a)
  b = _check_features('features_b', features_b)
  rng = np.random.default_rng(seed)
  distances = [frechet_distance(a[rng.integers(0, len(a), len(a))],
                                b[rng.integers(0, len(b), len(b))])
               for _ in range(num_resamples)]
  return float(np.std(distances, ddof=1))


def _penultimate(classifier, x):
  # The hidden layers' output of a `Classifier`, the input of its logits.
  return classifier.body(x)


def classifier_features(module, variables, images, *,
                        batch_size: int = 1000) -> np.ndarray:
  """The last hidden layer of a `models.classifier.Classifier`: [N, D] -> [N, F].

  F = module.hidden[-1] (F = D when hidden = (), where the body is the
  identity). Evaluated with module.apply(variables, x, method=...) on the
  classifier's `body` (its MLP, a setup-defined submodule), jitted, in
  batches of batch_size rows (the last padded, so one compilation serves
  all).

  Args:
    module: a `Classifier` (e.g. from `training.experiment.restore_trained`
      of a run of configs/fashion_mnist_classifier).
    variables: its variables, {'params': ...}.
    images: [N, D] flattened images, as the classifier was trained on.
    batch_size: rows per call.

  Returns:
    [N, F] float32 features.

  Raises:
    ValueError: if images is not [N >= 1, D] with the classifier's D.
    AttributeError: (from flax) if the module has no `body`.
  """
  images = np.asarray(images, np.float32)
  data_dim = getattr(module, 'data_dim', None)
  if images.ndim != 2 or images.shape[0] < 1 or (
      data_dim is not None and images.shape[1] != data_dim):
    raise ValueError(f'images must be [N >= 1, {data_dim}], got shape '
                     f'{images.shape}')
  apply = jax.jit(functools.partial(module.apply, method=_penultimate))
  chunks = []
  for _, batch, valid in padded_batches(images, batch_size=batch_size,
                                        what='classifier features'):
    chunks.append(np.asarray(apply(variables, batch))[:valid])
  return np.concatenate(chunks).astype(np.float32)


def sample_quality(module, variables, samples, test, train=None) -> dict:
  """The Fréchet distance of samples to test images, and its floor.

  Both in the feature space of the library's Fashion-MNIST classifier
  (`classifier_features`; not the Inception FID), in its squared feature
  units.

  Args:
    module, variables: the classifier (`classifier_features`).
    samples: [N, D] generated images, N ≥ 2.
    test: [M, D] real test images, M ≥ 2.
    train: optional [K, D] real training images, K ≥ 2.

  Returns:
    A dict of the distances and sample sizes. 'frechet_distance' is
    FD(samples, test), 'frechet_distance_standard_error' its bootstrap
    standard error (`bootstrap_standard_error`); 'num_samples' is N and
    'num_test' M. 'sample_class_frequencies' is the fraction of the
    samples the classifier labels as each class ([K], summing to 1): a
    generator that drops a class (mode collapse) shows a 0 there, which
    the distance alone does not name. When train is
    given, 'frechet_distance_floor' is FD(train[:N'], test) with N' =
    min(K, N), the distance between real training and test images, the
    floor a generator of N samples can hope to reach (taken with as many
    training images as samples where K allows, since the plug-in FD's
    O(1/N) bias depends on the sample size), and 'num_train' is N'.

  Raises:
    ValueError: for images of the wrong shape (`classifier_features`,
      `frechet_distance`).
  """
  def features(images):
    return classifier_features(module, variables, images)

  samples, test = np.asarray(samples), np.asarray(test)
  for name, images in (('samples', samples), ('test', test)):
    if images.ndim != 2 or images.shape[0] < 2:
      raise ValueError(f'{name} must be [N >= 2, D], got shape '
                       f'{images.shape}')
  test_features, sample_features = features(test), features(samples)
  labels = np.argmax(np.asarray(jax.jit(functools.partial(
      module.apply, method=lambda m, h: m.logits(h)))(
          variables, sample_features)), axis=-1)
  result = {'frechet_distance': frechet_distance(sample_features,
                                                 test_features),
            'sample_class_frequencies': (np.bincount(
                labels, minlength=module.num_classes) / len(labels)).tolist(),
            'frechet_distance_standard_error': bootstrap_standard_error(
                sample_features, test_features),
            'num_samples': int(samples.shape[0]),
            'num_test': int(test.shape[0])}
  if train is not None:
    train = np.asarray(train)
    num_train = min(train.shape[0], samples.shape[0])
    result['frechet_distance_floor'] = frechet_distance(
        features(train[:num_train]), test_features)
    result['num_train'] = int(num_train)
  return result
