"""Training loops (GRPO/DAPO today) and the pieces every trainer shares (``trainers.common``).

``TRAINERS`` maps a config's ``trainer:`` key to its config class and run function, so the
``rl-reason train`` CLI dispatches without importing torch until a job actually starts.
"""

# name -> ("module:ConfigClass", "module:run_function")
TRAINERS: dict[str, tuple[str, str]] = {
    "grpo": ("rl_reason.trainers.grpo_config:GRPOConfig", "rl_reason.trainers.grpo:train"),
}
