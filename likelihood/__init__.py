"""Estimators of the test log-likelihood: IWAE-k for latent-variable models."""
