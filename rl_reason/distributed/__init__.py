"""Data-parallel training: process groups from the launcher's environment and one training-engine
interface over plain torch (single process / DDP) and DeepSpeed ZeRO 1/2/3.

Modules: ``config`` (torch-free typed config section), ``setup`` (process group, rank helpers,
collectives with timeouts), ``engine`` (``TrainEngine``, ``build_train_engine``).
"""
