"""The training loop's parts, below the model families.

registry (the families by name) and settings (typed config fields),
experiment (a run built from its config), step (the data-parallel train
step), optimizers, checkpoints, metrics, and the command line. Nothing here
imports a family.
"""
