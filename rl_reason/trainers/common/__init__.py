"""Pieces shared by every trainer: metric sinks, phase timers, checkpoints, the prompt sampler."""
