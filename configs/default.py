"""Fields shared by every experiment; each config file starts from these.

A config file adds its family's own fields (config.model, its sections,
its eval.* fields), as declared by the family's settings dataclass in
aefamily/families/; a field it leaves out takes the dataclass's default.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.family = 'vae'          # a registered family (aefamily.families)
  # Data.
  # binarized_mnist, mnist, fashion_mnist, digits, sprites; 'tfds:NAME'
  # (any TFDS image dataset); 'arrays:PATH' (an .npz file or a directory
  # of .npy files).
  config.dataset = 'digits'
  # The canonical files' folder (the dataset's, or its parent). '' = the
  # one rule of input_pipeline.locations: $AEFAMILY_DATA_DIR/<dataset>, else
  # the per-user cache (~/.cache/aefamily/<dataset>), where
  # `python -m aefamily.data download <dataset>` puts them; then TFDS.
  config.data_dir = ''
  config.data_source = 'auto'    # auto, files, tfds (the named datasets)
  # TFDS's data directory, for 'tfds:NAME' and data_source='tfds': where
  # `python -m aefamily.data prepare tfds:NAME --manual_dir=PATH` (or `tfds
  # build NAME --file_format=array_record`) put the dataset. '' =
  # $TFDS_DATA_DIR, else ~/tensorflow_datasets. Never config.data_dir.
  config.tfds_data_dir = ''
  # For tfds: and arrays: datasets, which of their own splits are train,
  # valid and test; without a split named `valid`, the last valid_fraction
  # of `train` is the validation split (input_pipeline.SplitMapping).
  config.splits = ml_collections.ConfigDict()
  config.splits.train = 'train'
  config.splits.valid = 'validation'
  config.splits.test = 'test'
  config.splits.valid_fraction = 0.1
  config.binarization = 'none'   # none, threshold, dynamic (gray data)
  # Optimization.
  config.batch_size = 100        # global, over all devices and processes
  config.num_epochs = 100
  # Optimizer steps per jitted call (lax.scan); 0 = an epoch with the data
  # on the devices, else 1.
  config.steps_per_call = 0
  # Where the training split lives: 'device' (on the device mesh, sharded;
  # permutation and dynamic binarization drawn there, no host work between
  # calls), 'host' (batches made by NumPy and copied each call) or 'auto'
  # ('device' on accelerators when it fits a quarter of their memory; 'host'
  # on CPUs, where it is faster), or 'stream' (a tfds:NAME training split
  # read from its source batch by batch, never loaded). See
  # docs/training.md.
  config.data_placement = 'auto'
  # The train step's compute dtype: 'float32', or 'bfloat16' for its matrix
  # products (parameters and optimizer state stay float32; reported
  # likelihoods are float32 whatever it is). See training/precision.py.
  config.precision = 'float32'
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'                # adam, sgd, adagrad
  config.optimizer.learning_rate = 1e-3
  config.optimizer.final_learning_rate = 1e-4  # schedule 'exponential'
  config.optimizer.schedule = 'exponential'    # constant, iwae, exponential
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-4
  config.seed = 0
  # Book-keeping.
  config.log_every_steps = 500
  config.checkpoint_every_steps = 5000
  config.eval_every_epochs = 10  # validation bound; 0 = never
  # Keep the checkpoint of the best validation loss (WORKDIR/best) and stop
  # after this many validations without improvement; 0 = off.
  config.early_stopping_patience = 0
  # eval.py.
  config.eval = ml_collections.ConfigDict()
  config.eval.split = 'test'
  config.eval.checkpoint = 'latest'  # latest, best (early_stopping_patience)
  config.eval.num_samples = 5000  # K of the IWAE log-likelihood estimate
  config.eval.chunk_size = 500    # samples per chunk: bounds the memory
  config.eval.batch_size = 100
  config.eval.max_examples = 0    # 0 = the whole split
  config.eval.num_images = 64     # in each PNG grid
  return config
