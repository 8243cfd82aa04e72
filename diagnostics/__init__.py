"""Statistics that describe a trained model beyond its likelihood."""
