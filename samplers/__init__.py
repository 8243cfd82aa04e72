"""Sampling procedures: ancestral sampling, and Markov chains of denoising autoencoders."""
