"""Shared test fixtures: the location of the real data beside the checkout."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get('AEFAMILY_SHARED_DATA',
                                          REPO.parent / 'shared' / 'data'))


@pytest.fixture(scope='session')
def shared_data() -> pathlib.Path:
  """../shared/data, or skip when the real data is not beside the checkout."""
  if not (SHARED_DATA / 'binarized_mnist').is_dir():
    pytest.skip(f'real data not found at {SHARED_DATA}')
  return SHARED_DATA
