"""Flax modules that map inputs (and externally drawn noise) to distribution parameters."""
