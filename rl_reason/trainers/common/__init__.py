"""Pieces shared by every trainer: the step loop, engine construction, data-parallel lockstep,
metric sinks, phase timers, checkpoints, the prompt sampler."""
