"""Training: ``fit`` (a run on one fold), the engine's loops, losses, schedule, a run's data,
evaluation, the k-fold protocol and the demo run."""
