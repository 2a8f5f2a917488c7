"""Training loops (GRPO/DAPO, PPO, reward model, DPO family, SFT) and the pieces every trainer shares (``trainers.common``).

``TRAINERS`` maps a config's ``trainer:`` key to its config class and run function, so the
``rl-reason train`` CLI dispatches without importing torch until a job actually starts.
"""

# name -> ("module:ConfigClass", "module:run_function")
TRAINERS: dict[str, tuple[str, str]] = {
    "grpo": ("rl_reason.trainers.grpo_config:GRPOConfig", "rl_reason.trainers.grpo:train"),
    "ppo": ("rl_reason.trainers.post_config:PPOConfig", "rl_reason.trainers.ppo:train"),
    "reward_model": ("rl_reason.trainers.post_config:RewardModelConfig", "rl_reason.trainers.reward_model:train"),
    "dpo": ("rl_reason.trainers.post_config:DPOConfig", "rl_reason.trainers.dpo:train"),
    "kto": ("rl_reason.trainers.post_config:KTOConfig", "rl_reason.trainers.kto:train"),
    "sft": ("rl_reason.trainers.post_config:SFTConfig", "rl_reason.trainers.sft:train"),
}
