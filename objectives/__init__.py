"""Pure losses: per-example primitives and model-level losses with one shared signature.

The shared signature is loss(params, batch, rng, **hyperparameters) ->
(scalar loss, metrics). A loss that keeps running statistics (a moving
average baseline) reads them from the variables collection `STATISTICS` of
params and returns their new values as metrics[STATISTICS]; the train step
writes them back after the gradient update.
"""

STATISTICS = 'statistics'
