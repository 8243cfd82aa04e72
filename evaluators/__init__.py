"""What eval.py measures for each model family, with the images it draws.

An evaluator has the signature

  evaluate(config, model, params, images, rng, *, image_shape, workdir) -> dict

with images [N, D] from the evaluation split (binarized as in training). It
writes its PNG grids into workdir and returns the family's results in nats;
eval.py adds the run's identity and writes the JSON.
"""
