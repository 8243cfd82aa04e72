"""Pure losses: per-example primitives and model-level losses with one shared signature."""
