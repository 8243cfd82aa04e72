"""Tests of the sprites dataset and of the disentanglement metrics.

The sprites renderer is checked against its geometry (pixel centroids move
by the position step, areas match the shapes' closed-form areas), the
splits for determinism, disjointness and sharding. MIG and the FactorVAE
metric are checked on codes whose answer is known, with tolerances derived
from the estimators' bias and standard error at the sample sizes used.
"""

import math
import time

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from aefamily.diagnostics import disentanglement
from aefamily.input_pipeline import sprites

SIZES = np.array(list(sprites.FACTOR_SIZES.values()))
STEP = (sprites.IMAGE_SIZE - 2 * sprites.MARGIN) / 31  # pixels per position.
HALF = sprites.SPRITE_SIZE / 2                        # pixels, at scale 1.
# Closed-form areas in pixels at scale s: area = AREA[shape] * s².
# The implicit heart's area, 3.6601 (a 4001² grid quadrature of
# (x² + y² − 1)³ − x² y³ ≤ 0), rescaled to width 2.
HEART_UNIT_AREA = 3.6601 / 1.139**2
AREA = {0: (2 * HALF)**2, 1: math.pi * HALF * (0.5 * HALF),
        2: HEART_UNIT_AREA * HALF**2}


def _centroid(images: np.ndarray) -> np.ndarray:
  """[N, 64, 64] binary -> [N, 2] (x, y) pixel-centre centroids."""
  grid = np.arange(sprites.IMAGE_SIZE) + 0.5
  mass = images.sum(axis=(1, 2)).astype(np.float64)
  x = (images.sum(axis=1) * grid).sum(axis=1) / mass
  y = (images.sum(axis=2) * grid).sum(axis=1) / mass
  return np.stack([x, y], axis=1)


def _grid(**fixed) -> np.ndarray:
  """Random factors (seed 0, 300 rows) with some columns fixed."""
  factors = sprites.sample_factors(np.random.default_rng(0), 300)
  for name, value in fixed.items():
    factors[:, sprites.FACTOR_NAMES.index(name)] = value
  return factors


# --- Rendering ---------------------------------------------------------------


def test_render_is_binary_with_the_right_shape():
  factors = sprites.sample_factors(np.random.default_rng(1), 50)
  images = sprites.render(factors)
  assert images.shape == (50, 64, 64) and images.dtype == np.uint8
  assert set(np.unique(images)) == {0, 1}
  assert np.all(images.sum(axis=(1, 2)) > 30)  # every sprite is drawn.
  floats = sprites.render(factors, dtype=np.float32)
  assert floats.dtype == np.float32 and np.array_equal(floats, images)
  flat = sprites.images_of_factors(factors)
  assert flat.shape == (50, 4096) and flat.dtype == np.float32
  assert np.array_equal(flat.reshape(50, 64, 64), images)


def test_render_is_fast():
  factors = sprites.sample_factors(np.random.default_rng(2), 10_000)
  start = time.perf_counter()
  sprites.render(factors)
  # About 0.5 s on one core; 10x headroom for a busy machine.
  assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize('axis, name', [(0, 'position_x'), (1, 'position_y')])
def test_position_moves_the_centroid_by_the_step(axis, name):
  # Positions 4 and 27 keep even a rotated sprite at scale 1 in the frame;
  # the centroid moves by 23 steps of 42 / 31 pixels, and not across.
  # The step is not a whole number of pixels, so the two rasterizations
  # differ and the binary centroid moves by a fraction of a pixel more or
  # less (up to 0.2 px here): the tolerance is 0.5 px.
  before = _centroid(sprites.render(_grid(**{name: 4})))
  after = _centroid(sprites.render(_grid(**{name: 27})))
  shift = after - before
  np.testing.assert_allclose(shift[:, axis], 23 * STEP, atol=0.5)
  np.testing.assert_allclose(shift[:, 1 - axis], 0.0, atol=0.5)


def test_area_grows_with_scale_like_the_closed_form():
  base = _grid()
  areas = []
  for scale in range(6):
    base[:, 1] = scale
    areas.append(sprites.render(base).sum(axis=(1, 2)))
  areas = np.stack(areas, axis=1)  # [300, 6]
  assert np.all(np.diff(areas, axis=1) > 0), 'area must grow with scale'
  # Averaged over random sub-pixel positions and orientations, the pixel
  # count is the closed-form area (rasterization error averages out; a few
  # sprites per shape touch the frame, hence 4%).
  scales = sprites.FACTOR_VALUES['scale']
  for shape in range(3):
    rows = base[:, 0] == shape
    expected = AREA[shape] * scales**2
    np.testing.assert_allclose(areas[rows].mean(axis=0), expected, rtol=0.04)


def test_shapes_differ_and_symmetries_hold():
  factors = _grid(scale=5)[:40]
  images = [sprites.render(np.column_stack([np.full(40, s), factors[:, 1:]]))
            for s in range(3)]
  for a, b in ((0, 1), (0, 2), (1, 2)):
    differ = np.sum(images[a] != images[b], axis=(1, 2))
    union = np.sum(images[a] | images[b], axis=(1, 2))
    assert np.all(differ > 0.1 * union), (a, b)
  # Half a turn maps the ellipse onto itself, a quarter turn the square
  # (up to floating-point ties on a pixel or two).
  ellipse = _grid(shape=1)[:40]
  turned = ellipse.copy()
  turned[:, 2] = (turned[:, 2] + 20) % 40
  assert np.max(np.sum(sprites.render(ellipse) != sprites.render(turned),
                       axis=(1, 2))) <= 2
  quarter = turned.copy()
  quarter[:, 2] = (ellipse[:, 2] + 10) % 40
  assert np.min(np.sum(sprites.render(ellipse) != sprites.render(quarter),
                       axis=(1, 2))) > 20


def test_sprites_stay_inside_the_frame():
  # Positions 0 and 31 put the centre on whole pixels 42 apart, so an
  # unclipped sprite there is an exact translation of the one at the other
  # end: at scale 1 and orientation 0, the frame clips nothing.
  corners = {(x, y): sprites.render(np.array([[s, 5, 0, x, y]
                                              for s in range(3)]))
             for x in (0, 31) for y in (0, 31)}
  top_left = corners[0, 0]
  for (x, y), images in corners.items():
    dx, dy = 42 * (x // 31), 42 * (y // 31)
    np.testing.assert_array_equal(
        images, np.roll(top_left, (dy, dx), axis=(1, 2)), err_msg=str((x, y)))
    assert not top_left[:, 64 - dy:, :].any()
    assert not top_left[:, :, 64 - dx:].any()
  # A single sprite's pixel count is its area up to a half-pixel band along
  # its boundary (at most 9%, the square's 22 x 22 pixels for 21.3 x 21.3).
  count = top_left.sum(axis=(1, 2))
  np.testing.assert_allclose(count, [AREA[s] for s in range(3)], rtol=0.09)
  # Turned, a sprite at the corner may lose a few pixels to the frame, at
  # most the square's corners at 45 degrees (about 7% of its area).
  turned = sprites.render(np.array([[s, 5, o, 0, 0] for s in range(3)
                                    for o in range(40)]))
  fraction = turned.sum(axis=(1, 2)) / np.repeat([AREA[s] for s in range(3)],
                                                 40)
  assert fraction.min() > 0.88, fraction.min()


def test_bad_factors_are_refused():
  with pytest.raises(ValueError, match='position_x'):
    sprites.render(np.array([[0, 0, 0, 32, 0]]))
  with pytest.raises(ValueError, match=r'\[N, 5\]'):
    sprites.render(np.zeros((3, 4), np.int64))
  with pytest.raises(ValueError, match='integer'):
    sprites.render(np.zeros((3, 5), np.float32))


def test_sample_factors_and_grid_index():
  a = sprites.sample_factors(np.random.default_rng(3), 20_000)
  b = sprites.sample_factors(np.random.default_rng(3), 20_000)
  assert np.array_equal(a, b) and a.shape == (20_000, 5)
  for k, size in enumerate(SIZES):
    counts = np.bincount(a[:, k], minlength=size)
    assert counts.size == size
    # Uniform: each count is Binomial(20,000, 1/size); 5 standard errors.
    sd = math.sqrt(20_000 * (1 / size) * (1 - 1 / size))
    assert np.all(np.abs(counts - 20_000 / size) < 5 * sd)
  index = sprites.factors_to_index(a)
  assert np.all((index >= 0) & (index < sprites.NUM_COMBINATIONS))
  assert np.array_equal(sprites.index_to_factors(index), a)
  assert sprites.NUM_COMBINATIONS == 737_280


# --- Splits ------------------------------------------------------------------


def test_splits_are_deterministic_and_match_their_factors():
  first = sprites.load_sprites_split('valid')
  second = sprites.load_sprites_split('valid')
  assert first.images.shape == (5_000, 4096)
  assert first.images.dtype == np.float32
  assert first.binary and first.image_shape == (64, 64) and first.bits is None
  assert np.array_equal(first.images, second.images)
  factors = sprites.sprites_factors('valid')
  assert factors.shape == (5_000, 5) and factors.dtype == np.int32
  assert np.array_equal(first.labels, factors[:, 0])
  assert first.labels.dtype == np.int32
  assert np.array_equal(first.images, sprites.images_of_factors(factors))


def test_splits_are_disjoint_without_repeats():
  index = {s: sprites.factors_to_index(sprites.sprites_factors(s))
           for s in ('train', 'valid', 'test')}
  assert {s: v.size for s, v in index.items()} == sprites.DEFAULT_SIZES
  for s, v in index.items():
    assert np.unique(v).size == v.size, s
  everything = np.concatenate(list(index.values()))
  assert np.unique(everything).size == everything.size
  # A larger training set extends the default one and stays disjoint.
  larger = sprites.factors_to_index(
      sprites.sprites_factors('train', num_examples=60_000))
  assert np.array_equal(larger[:50_000], index['train'])
  assert not np.isin(larger, np.concatenate([index['valid'],
                                             index['test']])).any()
  small = sprites.sprites_factors('test', num_examples=100)
  assert np.array_equal(small, sprites.sprites_factors('test')[:100])


def test_process_shards_partition_the_split():
  whole = sprites.load_sprites_split('train', num_examples=301)
  factors = sprites.sprites_factors('train', num_examples=301)
  shards = [sprites.load_sprites_split('train', num_examples=301,
                                       process_index=i, process_count=3)
            for i in range(3)]
  assert sum(s.num_examples for s in shards) == 301
  for i, shard in enumerate(shards):
    assert np.array_equal(shard.images, whole.images[i::3])
    assert np.array_equal(shard.labels, whole.labels[i::3])
    assert np.array_equal(
        sprites.sprites_factors('train', num_examples=301, process_index=i,
                                process_count=3), factors[i::3])


def test_bad_split_arguments_are_refused():
  with pytest.raises(ValueError, match='unknown split'):
    sprites.sprites_factors('training')
  with pytest.raises(ValueError, match='num_examples'):
    sprites.sprites_factors('test', num_examples=10_001)
  with pytest.raises(ValueError, match='num_examples'):
    sprites.sprites_factors('train', num_examples=0)
  with pytest.raises(ValueError, match='process_index'):
    sprites.load_sprites_split('valid', process_index=2, process_count=2)


# --- MIG ---------------------------------------------------------------------

N = 5_000


@pytest.fixture(scope='module')
def factors() -> np.ndarray:
  return sprites.sample_factors(np.random.default_rng(4), N)


def _copy_code(factors, seed=5):
  """The factors as a code, with noise far below the bin widths."""
  noise = np.random.default_rng(seed).standard_normal(factors.shape)
  return factors + 1e-3 * noise


def _miller_bias(bins_a: int, bins_b: int) -> float:
  """E[plug-in I] for independent variables: (A − 1)(B − 1) / (2N) nats."""
  return (bins_a - 1) * (bins_b - 1) / (2 * N)


def test_plug_in_mutual_information_matches_scikit_learn(factors):
  binned = disentanglement.histogram_discretize(_copy_code(factors))
  for j, k in ((0, 0), (2, 3), (4, 4), (1, 2)):
    assert disentanglement.discrete_mutual_information(
        binned[:, j], factors[:, k]) == pytest.approx(
            sk_metrics.mutual_info_score(binned[:, j], factors[:, k]),
            abs=1e-12)
  assert disentanglement.discrete_entropy(factors[:, 0]) == pytest.approx(
      sk_metrics.mutual_info_score(factors[:, 0], factors[:, 0]), abs=1e-12)


def test_mig_of_the_factors_is_one_when_the_bins_resolve_them(factors):
  # With 40 bins, each of a factor's (at most 40) values has its own bin,
  # so I(z_k; v_k) = H(v_k) and the gap falls short of 1 only by the
  # runner-up: an independent dimension whose plug-in MI is biased up by
  # about (B − 1)(C − 1)/(2N) nats (B its occupied bins). Allowing twice
  # the largest such bias (for the max over the other dimensions and its
  # noise) gives 1 − gap ≤ 2 b_k / H(v_k): 0.007 (shape) to 0.07
  # (position), 0.05 on average.
  result = disentanglement.mig(_copy_code(factors), factors, num_bins=40)
  entropy = np.log(SIZES)
  allowance = np.array([
      2 * max(_miller_bias(SIZES[j], SIZES[k]) for j in range(5) if j != k)
      for k in range(5)]) / entropy
  gaps = result['per_factor_gap']
  assert np.all(gaps <= 1.0) and np.all(1.0 - gaps <= allowance), gaps
  assert result['mig'] >= 1.0 - allowance.mean()
  assert result['mig'] > 0.95
  np.testing.assert_allclose(result['factor_entropy'], entropy, rtol=0.01)
  assert result['mutual_information'].shape == (5, 5)


def _binned_entropy_ratio(size: int, num_bins: int) -> float:
  """H(bin(V)) / H(V) for V uniform on 0..size−1 and equal-width bins."""
  values = np.arange(size)
  edges = np.linspace(0, size - 1, num_bins + 1)
  bins = np.digitize(values, edges[1:-1])
  p = np.bincount(bins) / size
  p = p[p > 0]
  return float(-np.sum(p * np.log(p)) / math.log(size))


def test_mig_of_the_factors_at_20_bins_is_the_discretization_ceiling(
    factors):
  # 20 bins cannot resolve orientation (40 values) or position (32): a
  # perfect code scores H(bin(v_k)) / H(v_k) < 1 for them, computed here
  # from the uniform grid (0.81 and 0.85), then the runner-up bias as above.
  ceiling = np.array([_binned_entropy_ratio(s, 20) for s in SIZES])
  assert ceiling[:2] == pytest.approx([1.0, 1.0], abs=1e-12)
  assert abs(ceiling[2] - math.log(20) / math.log(40)) < 1e-12
  result = disentanglement.mig(_copy_code(factors), factors)
  allowance = np.array([
      2 * max(_miller_bias(min(SIZES[j], 20), SIZES[k])
              for j in range(5) if j != k) for k in range(5)]) / np.log(SIZES)
  gaps = result['per_factor_gap']
  # + 0.01: the sample's plug-in H(bin(v)) / H(v) vs the population's.
  assert np.all(gaps <= ceiling + 0.01), (gaps, ceiling)
  assert np.all(gaps >= ceiling - allowance - 0.01), (gaps, ceiling)
  assert abs(result['mig'] - ceiling.mean()) < 0.03


def test_mig_of_an_independent_code_is_zero(factors):
  # Each I(z_j; v_k) is only the plug-in bias, ≈ 19 (C_k − 1) / (2N) nats
  # (up to 0.074 nats for orientation), with a standard deviation of
  # √(2 · 19 (C_k − 1)) / (2N) ≤ 0.004 nats; the gap between the top two of
  # 10 such values is a few of those, ≤ 0.01 of H(v_k).
  code = np.random.default_rng(6).standard_normal((N, 10))
  result = disentanglement.mig(code, factors)
  info = result['mutual_information']
  bias = np.array([_miller_bias(20, c) for c in SIZES])
  assert np.all(info <= 3 * bias[None, :]), info
  assert np.all(result['per_factor_gap'] < 0.01), result['per_factor_gap']
  assert result['mig'] < 0.01


def test_mig_is_zero_for_a_factor_two_dimensions_share(factors):
  # Dimension 5 copies position_x (factor 3) like dimension 3 does: both
  # bin it identically (the noise is far from every bin edge), so the top
  # two mutual informations are equal and that factor's gap is 0; the
  # other factors keep their gaps.
  code = _copy_code(factors)
  shared = np.column_stack([code, _copy_code(factors[:, 3:4], seed=7)])
  alone = disentanglement.mig(code, factors)
  result = disentanglement.mig(shared, factors)
  gaps = result['per_factor_gap']
  assert abs(gaps[3]) < 1e-9
  np.testing.assert_allclose(np.delete(gaps, 3),
                             np.delete(alone['per_factor_gap'], 3), atol=1e-9)
  assert result['mig'] == pytest.approx(alone['mig'] - alone[
      'per_factor_gap'][3] / 5, abs=1e-9)


def test_mig_refuses_what_it_cannot_score(factors):
  with pytest.raises(ValueError, match='d >= 2'):
    disentanglement.mig(np.zeros((N, 1)), factors)
  with pytest.raises(ValueError, match='column 1'):
    constant = factors.copy()
    constant[:, 1] = 2
    disentanglement.mig(_copy_code(factors), constant)
  with pytest.raises(ValueError, match='factors must be'):
    disentanglement.mig(_copy_code(factors), factors[:10])
  with pytest.raises(ValueError, match='finite'):
    disentanglement.mig(np.full((N, 3), np.nan), factors)


# --- FactorVAE metric --------------------------------------------------------

VOTES = dict(num_train_votes=1_000, num_eval_votes=2_000,
             num_variance_examples=2_000)


def _identity(factors):
  return factors


def test_factor_vae_score_is_one_for_a_code_of_the_factors():
  # Permuted, rescaled factors, plus a collapsed dimension (constant) and a
  # noise dimension: the fixed factor's dimension has zero variance in every
  # vote, so each vote is right and the classifier is the permutation.
  perm = np.array([3, 0, 4, 1, 2])
  scale = np.array([0.1, 10.0, 1.0, 3.0, 0.5])
  noise = np.random.default_rng(8)

  def encode(factors):
    n = factors.shape[0]
    return np.column_stack([factors[:, perm] * scale, np.full(n, 7.0),
                            noise.standard_normal(n)])

  result = disentanglement.factor_vae_score(encode, _identity, SIZES, seed=0,
                                            **VOTES)
  assert result['accuracy'] == 1.0 and result['train_accuracy'] == 1.0
  assert result['accuracy_standard_error'] == 0.0
  assert result['num_active_dims'] == 6
  assert not result['active_dims'][5] and result['classifier'][5] == -1
  np.testing.assert_array_equal(result['classifier'][:5], perm)
  assert result['votes'].sum() == VOTES['num_train_votes']


def test_factor_vae_score_of_an_independent_code_is_chance():
  # A vote's dimension is then independent of its factor, so any
  # classifier is right with probability 1/K = 0.2 on held-out votes; the
  # score's standard error at 2,000 votes is √(0.16 / 2000) ≈ 0.009.
  noise = np.random.default_rng(9)
  result = disentanglement.factor_vae_score(
      lambda f: noise.standard_normal((f.shape[0], 10)), _identity, SIZES,
      seed=1, **VOTES)
  se = result['accuracy_standard_error']
  assert abs(se - math.sqrt(0.2 * 0.8 / 2_000)) < 0.002
  assert abs(result['accuracy'] - 0.2) < 4 * se, result


def test_factor_vae_score_of_sprite_centroids_is_two_fifths():
  # On rendered sprites, a code of the pixel centroid (x, y) captures the
  # two position factors and nothing else: votes fixing position_x (or _y)
  # go to the x (or y) dimension, whose variance then falls to the sprite's
  # sub-pixel jitter, while votes fixing shape, scale or orientation split
  # between the two dimensions at random. The majority classifier maps
  # x -> position_x, y -> position_y, and is right on 2 of the 5 factors.
  def encode(images):
    return _centroid(images.reshape(-1, 64, 64))

  result = disentanglement.factor_vae_score(
      encode, sprites.images_of_factors, SIZES, seed=2, num_train_votes=200,
      num_eval_votes=300, num_variance_examples=1_000)
  np.testing.assert_array_equal(result['classifier'], [3, 4])
  se = math.sqrt(0.4 * 0.6 / 300)
  assert abs(result['accuracy'] - 0.4) < 4 * se, result


def test_factor_vae_score_with_every_dimension_collapsed():
  result = disentanglement.factor_vae_score(
      lambda f: np.zeros((f.shape[0], 3)), _identity, SIZES, **VOTES)
  assert result['accuracy'] == 0.0 and result['num_active_dims'] == 0


def test_factor_vae_score_is_deterministic_and_checks_its_encoder():
  def run(seed):
    return disentanglement.factor_vae_score(
        lambda f: f + 0.3 * np.sin(f.sum(1, keepdims=True)), _identity, SIZES,
        seed=seed, num_train_votes=50, num_eval_votes=50,
        num_variance_examples=100)
  assert run(3)['accuracy'] == run(3)['accuracy']
  np.testing.assert_array_equal(run(3)['votes'], run(3)['votes'])
  with pytest.raises(ValueError, match=r'\[n, d\]'):
    disentanglement.factor_vae_score(lambda f: f[:, 0], _identity, SIZES,
                                     **VOTES)
  with pytest.raises(ValueError, match='votes_per_group'):
    disentanglement.factor_vae_score(_identity, _identity, SIZES,
                                     votes_per_group=1)
