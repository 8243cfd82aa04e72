"""The training loop's parts: optimizers, the generic pmapped step, checkpoints, metrics."""
