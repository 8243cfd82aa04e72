"""`command_line.reuse_freed_host_memory`: glibc reuses a step's freed
buffers instead of faulting fresh pages in for each step.

The check counts minor page faults (getrusage) in a fresh process that
allocates, touches and frees four 1 MiB blocks a round, the way a step's
buffers come and go. With glibc's defaults each round faults its pages in
again (992 of its 1024 pages, measured); with the thresholds set, the
blocks are reused (5 a round).
"""

import os
import subprocess
import sys

import pytest

from aefamily.training import command_line

PROGRAM = r'''
import ctypes, resource, sys
from aefamily.training import command_line
set_ = command_line.reuse_freed_host_memory() if sys.argv[1] == '1' else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
rounds, size = 200, 2**20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(rounds):
  blocks = [libc.malloc(size) for _ in range(4)]
  for b in blocks:
    ctypes.memset(b, 1, size)
  for b in blocks:
    libc.free(b)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(set_, faults / rounds)
'''


def _faults_per_round(reuse: bool) -> tuple[str, float]:
  env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
  out = subprocess.run([sys.executable, '-c', PROGRAM, '1' if reuse else '0'],
                       env=env, capture_output=True, text=True, check=True)
  was_set, faults = out.stdout.split()
  return was_set, float(faults)


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='glibc on Linux')
def test_freed_blocks_are_reused_rather_than_faulted_in_again():
  was_set, reused = _faults_per_round(True)
  assert was_set == 'True'
  _, default = _faults_per_round(False)
  # 4 blocks of 256 pages a round: glibc's defaults fault in most of them
  # again; reused blocks fault in almost none.
  assert default > 500, default
  assert reused < 10, reused


def test_an_environment_choice_is_left_alone(monkeypatch):
  monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', '131072')
  assert command_line.reuse_freed_host_memory() is False
