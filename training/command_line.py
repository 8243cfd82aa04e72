"""The command lines of train.py and eval.py: flags, XLA flags, processes.

Library code never reads flags; this module is the only one that defines
them. `run(main, workdir_help)` is what `python -m aefamily.train`,
`python train.py` and the `aefamily-train` console script all call.
"""

import ctypes
import functools
import importlib.machinery
import importlib.util
import os
import re
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging
import jax
import jaxlib.version
import ml_collections
from ml_collections import config_flags

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs')
DEFAULT_CONFIG = os.path.join(CONFIG_DIR, 'digits_vae.py')
# Where train.py and eval.py keep compiled programs (--compilation_cache_dir).
DEFAULT_COMPILATION_CACHE = '~/.cache/aefamily/jax'


def shipped_configs() -> list[str]:
  """The short names of the configs shipped in aefamily.configs."""
  return sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                if name.endswith('.py') and not name.startswith('_'))


def config_path(name: str) -> str:
  """The file of a --config value: a path to a file as given, or the short
  name of a shipped config ('binarized_mnist_vae') resolved inside the
  package. Anything else is returned unchanged, for absl to report."""
  if os.path.exists(name) or os.sep in name or name.endswith('.py'):
    return name
  shipped = os.path.join(CONFIG_DIR, f'{name}.py')
  return shipped if os.path.exists(shipped) else name


def resolve_config_argument(argv: list[str]) -> list[str]:
  """argv with a `--config=NAME` (or `--config NAME`) of a shipped config's
  short name replaced by its path; other arguments unchanged."""
  out = list(argv)
  for i, arg in enumerate(out):
    if arg.startswith('--config='):
      out[i] = '--config=' + config_path(arg[len('--config='):])
    elif arg == '--config' and i + 1 < len(out):
      out[i + 1] = config_path(out[i + 1])
  return out


def _load_config_file(path: str) -> ml_collections.ConfigDict:
  """get_config() of the Python file path; `FILE:ARG` calls get_config(ARG),
  as absl's config_flags does."""
  file, _, argument = path.partition(':')
  # A name ending in .py: importlib would otherwise find no loader for
  # config.yaml and fail with an error about None.
  loader = importlib.machinery.SourceFileLoader('_aefamily_config', file)
  spec = importlib.util.spec_from_loader('_aefamily_config', loader)
  module = importlib.util.module_from_spec(spec)
  loader.exec_module(module)
  return module.get_config(argument) if argument else module.get_config()


def config_file_error(path: str, error: Exception) -> str:
  """One line saying that the --config file at path cannot be loaded as a
  config, why (error), and what a config is."""
  reason = (str(error).splitlines() or [''])[0]
  return (f'--config={path} could not be loaded as a config '
          f'({type(error).__name__}: {reason}). A config is a Python file '
          'that defines get_config() returning an ml_collections.ConfigDict '
          '(see aefamily/configs); YAML and JSON files are not read.')


def _flag_value(argv: list[str], name: str) -> str | None:
  """The value of the flag --NAME in argv (the last one given), or None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      value = arg[len(f'--{name}='):]
    elif arg == f'--{name}' and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def config_given(argv: list[str] | None = None) -> bool:
  """Whether the command line (sys.argv by default) names a --config."""
  return _flag_value(sys.argv if argv is None else argv, 'config') is not None


def config_overrides(argv: list[str] | None = None) -> list[str]:
  """The dotted names of the --config.FIELD overrides on the command line."""
  return [match[1] for arg in (sys.argv if argv is None else argv)
          if (match := re.match(r'--config\.([\w.]+)(=|$)', arg))]


def override_error(argv: list[str],
                   base: ml_collections.ConfigDict | None = None
                   ) -> str | None:
  """One line naming a --config that is neither a file nor a shipped
  config, or the first --config.FIELD override that names no field of the
  config (with the known fields beside it); None if there is neither.
  `base`, when given, is the config the overrides apply to."""
  path = _flag_value(argv, 'config') or DEFAULT_CONFIG
  if base is not None:
    config, path = base, 'the config the run was trained with'
  elif not os.path.isfile(path.split(':')[0]):
    return (f'--config={path}: no such file, and no shipped config of that '
            f'name; shipped configs: {shipped_configs()}')
  else:
    try:
      config = _load_config_file(path)
    except Exception as e:  # pylint: disable=broad-except
      return config_file_error(path, e)
  for arg in argv:
    match = re.match(r'--config\.([\w.]+)(=|$)', arg)
    if not match:
      continue
    node, prefix = config, 'config'
    for name in match[1].split('.'):
      if not isinstance(node, ml_collections.ConfigDict) or name not in node:
        known = (sorted(node) if isinstance(node, ml_collections.ConfigDict)
                 else [])
        return (f'{prefix}.{name} is not a field of the config ({path}); '
                f'known fields of {prefix}: {known}')
      node, prefix = node[name], f'{prefix}.{name}'
  return None


def _exit_with(argv: list[str], error: Exception | str,
               base: ml_collections.ConfigDict | None = None) -> None:
  line = (override_error(argv, base) or
          (str(error).splitlines() or [repr(error)])[0])
  print(f'{os.path.basename(argv[0])}: error: {line}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv: list[str],
                base: ml_collections.ConfigDict | None = None) -> list[str]:
  """absl's flag parsing, with one line and exit code 2 for a bad flag.

  A misspelt --config.FIELD, a value of the wrong type or an unknown flag
  ends the process before anything is written, with one line naming the
  flag (and, for a config field, the known fields of the config, or of
  `base` when --config is that).
  """
  argv = resolve_config_argument(argv)
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # absl and config_flags raise several kinds
    _exit_with(argv, e, base)


def define_flags(workdir_help: str,
                 base: ml_collections.ConfigDict | None = None):
  """Defines --config (a file, or a shipped config's short name; every field
  overridable), --workdir and the multi-process flags
  --coordinator_address, --num_processes and --process_id. With `base`,
  --config is that config instead, its fields overridable the same way.

  Returns:
    (config flag holder, workdir flag holder, initialize): call
    initialize() first thing in main; it runs `initialize_distributed` with
    the multi-process flags.
  """
  if base is None:
    config = config_flags.DEFINE_config_file(
        'config', DEFAULT_CONFIG,
        'Experiment config: a file, or the short name of a shipped config '
        f'({", ".join(shipped_configs())}); override fields with '
        '--config.FIELD=VALUE.', lock_config=True)
  else:
    config = config_flags.DEFINE_config_dict(
        'config', base, 'The config the run was trained with; override '
        'fields with --config.FIELD=VALUE.', lock_config=True)
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flag_as_required('workdir')
  coordinator = flags.DEFINE_string(
      'coordinator_address', None, 'host:port of process 0 in a '
      'multi-process run; on a TPU pod leave it unset (detected).')
  num_processes = flags.DEFINE_integer(
      'num_processes', None, 'The number of processes of a multi-process run.')
  process_id = flags.DEFINE_integer(
      'process_id', None, 'This process, in [0, num_processes).')
  cache = flags.DEFINE_string(
      'compilation_cache_dir', DEFAULT_COMPILATION_CACHE,
      "JAX's persistent compilation cache: a rerun loads its compiled "
      "programs from here ('' for none; $JAX_COMPILATION_CACHE_DIR, when "
      'set, wins).')

  def initialize():
    prefer_fast_cpu_kernels()
    reuse_freed_host_memory()
    use_compilation_cache(cache.value)
    initialize_distributed(coordinator.value, num_processes.value,
                           process_id.value)
  return config, workdir, initialize


def run(main: Callable[[ml_collections.ConfigDict, str], object],
        workdir_help: str, *,
        config_of_workdir: Callable[[str], ml_collections.ConfigDict | None]
        | None = None) -> None:
  """Defines the flags, parses them and runs main(config, workdir).

  The entry point of train.py and eval.py; a bad flag ends the process
  before main runs (`parse_flags`).

  Args:
    main: main(config, workdir).
    workdir_help: the help of --workdir.
    config_of_workdir: without --config on the command line, the
      --config.FIELD overrides apply to config_of_workdir(WORKDIR) when it
      is not None (eval.py: the config the run was trained with, whose
      family's fields the default config lacks). It must read files only:
      JAX is not initialized yet.
  """
  # config_flags reads the overrides in sys.argv when the flag is defined.
  sys.argv = resolve_config_argument(sys.argv)
  base, workdir = None, _flag_value(sys.argv, 'workdir')
  if config_of_workdir and workdir and not config_given(sys.argv):
    base = config_of_workdir(workdir)
  error = override_error(sys.argv, base)
  if error:
    _exit_with(sys.argv, error, base)
  try:
    config_flag, workdir_flag, initialize = define_flags(workdir_help, base)
  except Exception as e:  # a config file that cannot be loaded
    _exit_with(sys.argv, e, base)

  def app_main(argv):
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    initialize()
    main(config_flag.value, workdir_flag.value)

  app.run(app_main, flags_parser=functools.partial(parse_flags, base=base))


# jaxlib releases whose XLA:CPU offloads dots, reductions and elementwise
# fusions to YNNPACK, and know the flag that turns this off. An unknown flag
# in XLA_FLAGS aborts the process, so other releases are left alone.
_YNN_FLAG = '--xla_cpu_experimental_ynn_fusion_type'
_YNN_RELEASES = ((0, 10), (0, 11))


def prefer_fast_cpu_kernels(jaxlib_version: str = jaxlib.version.__version__
                            ) -> None:
  """Turns off XLA:CPU's YNNPACK fusions, unless XLA_FLAGS already sets them.

  On the jaxlib releases that have them (0.10 and 0.11), they run the IWAE
  step 13% slower at batch 1,000 and the IWAE-5000 evaluation 1.5× slower
  than XLA's own kernels; the VAE step runs at most 5% faster with them
  (benchmarks/performance.py --ynnpack on a 2-core CPU; see the README's
  Performance section, and jax-ml/jax#37465). XLA reads
  XLA_FLAGS when the first computation starts, so call this before any.
  Other releases are left alone: XLA aborts on a flag it does not know.

  Args:
    jaxlib_version: the installed jaxlib's version string, e.g. '0.10.2';
      a string that does not start with 'major.minor' changes nothing.
  """
  match = re.match(r'(\d+)\.(\d+)', jaxlib_version)
  release = (int(match[1]), int(match[2])) if match else None
  flags_now = os.environ.get('XLA_FLAGS', '')
  if release in _YNN_RELEASES and _YNN_FLAG not in flags_now:
    os.environ['XLA_FLAGS'] = f'{flags_now} {_YNN_FLAG}='.strip()


# glibc's mallopt parameters (malloc.h), and the ceiling that glibc's own
# moving mmap threshold reaches on 64-bit systems (32 MiB); glibc moves the
# trim threshold with it, to twice the mmap threshold.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20


def reuse_freed_host_memory(threshold: int = MMAP_THRESHOLD) -> bool:
  """Lets glibc's malloc reuse freed host blocks below `threshold` bytes.

  XLA:CPU allocates each step's intermediate buffers afresh. glibc serves a
  block above its mmap threshold (128 KiB at start) with a new mapping,
  unmapped when freed, and returns free memory above its trim threshold at
  the heap's top to the system, so each step's buffers of a few hundred KiB
  (a batch of 100 MNIST images is 314 KiB) are faulted in again: the VAE's
  isolated train step took 830 minor page faults a step. glibc raises both
  thresholds by itself once a large mapped block is freed, which is why a
  training that has loaded its data ran faster than a short benchmark of
  its step. This sets them from the start: the mmap threshold to
  `threshold` (glibc's own ceiling by default) and the trim threshold to
  twice that, as glibc's own rule does. One CPU core, same process:
  16k examples/s with glibc's defaults, 25k with these, and 3 page faults
  a step (benchmarks/whole_run.py; docs/performance.md). Freed memory up
  to those sizes is kept for reuse rather than returned at once.

  Call it before the first computation. Does nothing, returning False,
  where the C library has no mallopt (not glibc) or where
  $MALLOC_MMAP_THRESHOLD_ or $MALLOC_TRIM_THRESHOLD_ already choose.

  Returns:
    Whether the thresholds were set.
  """
  if {'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_'} & set(os.environ):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
      mallopt(_M_TRIM_THRESHOLD, 2 * threshold))


# JAX keeps only programs that took 1 s or more to compile; the VAE's train
# step takes 1.0 s on a 2-core CPU, its initializer 0.8 s.
CACHE_MIN_COMPILE_SECONDS = 0.1
CACHE_MAX_BYTES = 2**30  # then the least recently used programs go


def use_compilation_cache(directory: str) -> str | None:
  """Turns on JAX's persistent compilation cache in directory.

  A rerun of a config (another seed, a resumed run, eval.py on a trained
  workdir) then loads its compiled programs instead of compiling them: the
  10-epoch binarized MNIST VAE's train step and initializer took 1.8 s of
  its start to compile on a 2-core CPU (benchmarks/whole_run.py). A
  program is keyed by its computation, the XLA flags, the devices and the
  jax and jaxlib versions, so a loaded program is the one a compilation
  would give. Programs that took CACHE_MIN_COMPILE_SECONDS or more to
  compile are kept, at most CACHE_MAX_BYTES in all. Call it before the
  first computation.

  Args:
    directory: a local directory ('~' expanded), or '' for no cache.

  Returns:
    The cache directory now in use, or None: for '', when
    $JAX_COMPILATION_CACHE_DIR is set (the environment chooses), or when
    the directory cannot be made (a warning says why; the run compiles).
  """
  if not directory or os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return None
  path = os.path.expanduser(directory)
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    logging.warning('No compilation cache (%s); every program is compiled. '
                    'Choose another with --compilation_cache_dir.', e)
    return None
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    CACHE_MIN_COMPILE_SECONDS)
  if importlib.util.find_spec('filelock'):  # JAX's bound needs it
    jax.config.update('jax_compilation_cache_max_size', CACHE_MAX_BYTES)
  return path


def initialize_distributed(coordinator_address: str | None,
                           num_processes: int | None,
                           process_id: int | None) -> None:
  """Joins a multi-process run with `jax.distributed.initialize`.

  With a coordinator address, all three values are required (several CPU or
  GPU hosts, or several processes on one machine; CPU processes exchange
  gradients through gloo). Without one, a multi-host TPU slice
  (TPU_WORKER_HOSTNAMES set) is detected from the environment, and
  otherwise the run is a single process. Call it before any JAX
  computation.

  Raises:
    ValueError: if the values are incomplete or process_id is out of range.
  """
  if coordinator_address is None:
    if num_processes is not None or process_id is not None:
      raise ValueError('--num_processes and --process_id need '
                       '--coordinator_address')
    if ',' in os.environ.get('TPU_WORKER_HOSTNAMES', ''):
      jax.distributed.initialize()
    return
  if num_processes is None or process_id is None:
    raise ValueError('--coordinator_address needs --num_processes and '
                     '--process_id')
  if not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id={process_id} is not in [0, '
                     f'{num_processes})')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                             process_id=process_id)
