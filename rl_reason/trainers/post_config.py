"""Typed configs of the post-training trainers: reward model, DPO family, KTO, SFT, PPO (torch-free).

The offline trainers (RM, DPO, SFT) share the model, optimisation, logging and checkpoint
sections; PPO is the GRPO config, less the advantage estimator, plus a critic, a reward model
and GAE settings, since its actor part is the GRPO trainer (rollout, reward, update, checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rl_reason.config import ConfigError, cfg_field
from rl_reason.trainers.grpo_config import (
    AdamWConfig,
    GRPOConfig,
    ModelConfig,
    PolicyUpdateConfig,
    RunConfig,
)


@dataclass
class OptimConfig(AdamWConfig):
    lr: float = cfg_field(1e-5, "AdamW learning rate", gt=0)
    steps: int = cfg_field(100, "optimizer updates", gt=0)
    batch_size: int = cfg_field(8, "examples (pairs for RM/DPO) per optimizer update", gt=0)
    micro_batch_size: int = cfg_field(8, "examples per forward/backward (gradient accumulation; does not change the result)", gt=0)

    def __post_init__(self):
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"train.batch_size={self.batch_size} is not a multiple of train.micro_batch_size={self.micro_batch_size}")
        super().__post_init__()


@dataclass
class RowDataConfig:
    """A training file of rows, a held-out file or share, and a row limit."""

    train: str = cfg_field("", "rows: JSONL file or hub dataset id (hub:split)")
    eval: str = cfg_field("", "held-out rows (same syntax); empty: hold out eval_fraction of train")
    eval_fraction: float = cfg_field(0.1, "share of train rows held out for eval when data.eval is empty (whole prompts)", ge=0, lt=1)
    limit: int = cfg_field(0, "use only the first N training rows (0 = all)", ge=0)


@dataclass
class PairDataConfig(RowDataConfig):
    train: str = cfg_field("", "preference pairs: TRL prompt/chosen/rejected JSONL file or hub dataset id (hub:split)")
    margin_key: str = cfg_field("", "RM only: row key holding a per-pair margin (e.g. a score difference); empty = no margin")


@dataclass
class UnpairedDataConfig(RowDataConfig):
    train: str = cfg_field("", "unpaired rows: TRL prompt/completion/label (bool: desirable) JSONL file or hub dataset id (hub:split)")


@dataclass
class MintPairsConfig:
    """Verifier-filtered pairs from the policy's own samples (``rl-reason pairs``)."""

    data: str = cfg_field("", "prompts to sample: dataset name[:split] or JSONL (data_pipelines.load_dataset); empty = off")
    limit: int = cfg_field(64, "prompts to sample (0 = all)", ge=0)
    n: int = cfg_field(8, "samples per prompt", ge=2, why="to find both a correct and an incorrect answer")
    template: str = cfg_field("chat_boxed", "prompt template (data_pipelines.render_prompt)")
    temperature: float = cfg_field(1.0, "sampling temperature")
    max_new_tokens: int = cfg_field(64, "response limit")
    max_pairs_per_prompt: int = cfg_field(2, "pairs kept per prompt (0 = all)")


@dataclass
class TaskEvalConfig:
    """Held-out task accuracy through the eval harness (greedy pass@1)."""

    data: str = cfg_field("", "held-out prompts (dataset name[:split] or JSONL); empty = off")
    limit: int = cfg_field(100, "held-out prompts (0 = all)", ge=0)
    template: str = cfg_field("chat_boxed", "prompt template")
    max_new_tokens: int = cfg_field(64, "response limit")


@dataclass
class RMLossConfig:
    center_coef: float = cfg_field(0.0, "reward centring: + c * (r_chosen + r_rejected)^2 (TRL center_rewards_coefficient; 0 = off)")


@dataclass
class OfflineRunConfig(RunConfig):
    """The offline trainers' (RM, PRM, DPO, KTO, SFT) shared sections: optimisation and the eval
    cadence. Each reads its rows from ``data.train`` or, when that is empty, makes them from the
    prompts of the section ``rows_from`` names (``<rows_from>.data``)."""

    rows_from: ClassVar[str]
    train: OptimConfig = cfg_field(OptimConfig, "optimisation")
    eval_every: int = cfg_field(20, "held-out metrics every N steps, before step 1 and at the end (0 = off)")

    def check(self) -> None:
        if not self.data.train and not getattr(self, self.rows_from).data:
            raise ConfigError(f"data.train (a data file or hub id) or {self.rows_from}.data (prompts to make the "
                              f"training rows from) is required")


@dataclass
class HeadModelRunConfig(OfflineRunConfig):
    """The reward-model trainers' (RM, PRM) shared part: a causal-LM backbone under a fresh head,
    both loaded in full precision (their loaders take no 4-bit option)."""

    model: ModelConfig = cfg_field(ModelConfig, "backbone (a causal LM gets a fresh head: a scalar for the reward "
                                                "model, two classes per token for the PRM) and length limits")

    def check(self) -> None:
        if self.model.load_in_4bit:
            raise ConfigError(f"model.load_in_4bit: the {self.trainer} trainer loads its backbone and head in full "
                              f"precision; set model.load_in_4bit=false")


@dataclass
class PairsRunConfig(OfflineRunConfig):
    """The pair trainers' (reward model, DPO family) data: a pairs file, or pairs minted from the
    model's own verifier-graded samples."""

    rows_from = "pairs"
    data: PairDataConfig = cfg_field(PairDataConfig, "preference pairs (the DPO family trains on minted pairs "
                                                     "instead when pairs.data is set)")
    pairs: MintPairsConfig = cfg_field(
        MintPairsConfig, "pairs minted from the model's own verified samples: the reward model's data when data.train is "
                         "empty; the DPO family's instead of data.train, minted again each iteration with the newest policy")


@dataclass
class RewardModelConfig(HeadModelRunConfig, PairsRunConfig, trainer="reward_model", output_dir="runs/rm",
                        run_files="metrics.jsonl, checkpoints/, final/ (the HF reward model)"):
    loss: RMLossConfig = cfg_field(RMLossConfig, "Bradley-Terry loss")


@dataclass
class StepDataConfig:
    train: str = cfg_field("", "step-labelled solutions: JSONL file or hub id[:split] (stepwise prompt/completions/labels, "
                               "raw Math-Shepherd or PRM800K: data.format); empty: Monte-Carlo labels from label.data")
    format: Literal["auto", "stepwise", "math_shepherd", "prm800k"] = cfg_field(
        "auto", "how data.train/eval rows are read (data_pipelines.step_labels); auto: from the first row's keys")
    eval: str = cfg_field("", "held-out step-labelled rows (same syntax); empty: hold out eval_fraction of the prompts")
    eval_fraction: float = cfg_field(0.1, "share of prompts held out for eval when data.eval is empty", ge=0, lt=1)
    limit: int = cfg_field(0, "use only the first N training rows (0 = all)", ge=0)
    separator: str = cfg_field("\n", "text that ends each step: steps are joined by it and labelled at its last token")

    def __post_init__(self):
        if not self.separator:
            raise ConfigError("data.separator must not be empty")


@dataclass
class MCLabelConfig:
    """Monte-Carlo step labels from the policy's own rollouts (``rl-reason prm-label``)."""

    data: str = cfg_field("", "prompts to solve: dataset name[:split] or JSONL (data_pipelines.load_dataset); empty = off")
    limit: int = cfg_field(100, "prompts to solve (0 = all)", ge=0)
    n: int = cfg_field(2, "solutions sampled per prompt; each one's steps are labelled", gt=0)
    k: int = cfg_field(4, "continuations sampled after each step: the step is good when any reaches a verified answer", gt=0)
    max_steps: int = cfg_field(6, "label at most the first N steps of a solution (0 = all)", ge=0)
    template: str = cfg_field("chat_boxed", "prompt template (data_pipelines.render_prompt)")
    temperature: float = cfg_field(0.8, "sampling temperature of solutions and continuations", gt=0, why="the continuations are sampled")
    max_new_tokens: int = cfg_field(64, "length limit of a solution, and of each continuation", gt=0)


@dataclass
class PRMConfig(HeadModelRunConfig, trainer="prm", output_dir="runs/prm",
                run_files="metrics.jsonl, checkpoints/, labels/, final/ (the HF process reward model)"):
    rows_from = "label"
    seed: int = cfg_field(0, "seed of row order and of Monte-Carlo labelling")
    data: StepDataConfig = cfg_field(StepDataConfig, "step-labelled solutions")
    label: MCLabelConfig = cfg_field(MCLabelConfig, "make data.train first: Monte-Carlo labels from the backbone's own rollouts")
    train: OptimConfig = cfg_field(OptimConfig, "optimisation (batch_size counts solutions)")
    eval_every: int = cfg_field(20, "held-out step accuracy every N steps, before step 1 and at the end (0 = off)")


@dataclass
class DPOLossConfig:
    name: Literal["dpo", "ipo", "simpo", "orpo"] = cfg_field("dpo", "preference loss (rl_reason.algorithms.PREFERENCE_LOSSES); cDPO = dpo with label_smoothing")
    beta: float = cfg_field(0.1, "inverse temperature (DPO/cDPO/IPO tau; SimPO uses ~2; ORPO lambda)")
    label_smoothing: float = cfg_field(0.0, "cDPO / SimPO: assumed share of flipped labels")
    gamma: float = cfg_field(0.5, "SimPO target reward margin")

    @property
    def needs_reference(self) -> bool:
        return self.name in ("dpo", "ipo")


@dataclass
class DPOConfig(PairsRunConfig, trainer="dpo", output_dir="runs/dpo",
                run_files="metrics.jsonl, checkpoints/, pairs_iter*/, final/"):
    model: ModelConfig = cfg_field(ModelConfig, "policy (the reference is a frozen copy of it) and length limits")
    iterations: int = cfg_field(1, "with pairs.data: sample -> pairs -> DPO rounds, each sampling with the newest policy", ge=1)
    loss: DPOLossConfig = cfg_field(DPOLossConfig, "preference loss")
    task_eval: TaskEvalConfig = cfg_field(TaskEvalConfig, "held-out task accuracy before training and after each iteration")

    def check(self) -> None:
        if self.iterations > 1 and not self.pairs.data:
            raise ConfigError(f"iterations={self.iterations}: more than 1 needs pairs.data to sample again")


@dataclass
class KTOLossConfig:
    beta: float = cfg_field(0.1, "inverse temperature of the implicit reward (TRL KTOConfig.beta)", gt=0)
    desirable_weight: float = cfg_field(1.0, "weight of desirable (label true) rows' losses", ge=0)
    undesirable_weight: float = cfg_field(1.0, "weight of undesirable rows' losses; the paper keeps "
                                          "desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3]", ge=0)


@dataclass
class KTOConfig(DPOConfig, trainer="kto", output_dir="runs/kto",
                run_files="metrics.jsonl, checkpoints/, iter_k/ (with pairs.data), final/"):
    """DPO's run layout (pairs file or minted samples, iterations, task eval) on unpaired rows."""

    data: UnpairedDataConfig = cfg_field(UnpairedDataConfig, "unpaired labelled rows (ignored for training when pairs.data is set)")
    pairs: MintPairsConfig = cfg_field(
        MintPairsConfig, "unpaired rows from the policy's own samples, minted each iteration: every distinct sample, "
        "labelled by the verifier (max_pairs_per_prompt unused)")
    iterations: int = cfg_field(1, "with pairs.data: sample -> label -> KTO rounds, each sampling with the newest policy", ge=1)
    loss: KTOLossConfig = cfg_field(KTOLossConfig, "KTO loss (rl_reason.algorithms.UNPAIRED_LOSSES['kto'])")
    train: OptimConfig = cfg_field(OptimConfig, "optimisation (train.batch_size rows per update; the reference point "
                                   "is estimated over the whole batch)")
    eval_every: int = cfg_field(20, "held-out KTO metrics every N steps, before step 1 and at the end (0 = off)")


@dataclass
class SFTDataConfig:
    train: str = cfg_field("", "chat JSONL ('messages' rows) or prompt/completion JSONL, or hub id; empty with rejection_sampling.data")
    eval_fraction: float = cfg_field(0.05, "share of rows held out for the eval loss", ge=0, lt=1)
    limit: int = cfg_field(0, "use only the first N rows (0 = all)", ge=0)
    packing: bool = cfg_field(False, "pack several short examples into one row of model.max_seq_len tokens (no padding waste)")


@dataclass
class SFTConfig(OfflineRunConfig, trainer="sft", output_dir="runs/sft", run_files="metrics.jsonl, checkpoints/, final/"):
    rows_from = "rejection_sampling"
    data: SFTDataConfig = cfg_field(SFTDataConfig, "chat data; the loss covers assistant tokens only")
    rejection_sampling: MintPairsConfig = cfg_field(
        MintPairsConfig, "rejection-sampling fine-tuning: sample pairs.n answers per prompt, keep the verified-correct ones as data")
    task_eval: TaskEvalConfig = cfg_field(TaskEvalConfig, "held-out task accuracy before and after training")


@dataclass
class PPOCriticConfig:
    init: str = cfg_field("reward_model", "critic weights: 'reward_model', 'actor' (its backbone + a fresh head) or a model path")
    lr: float = cfg_field(1e-5, "critic AdamW learning rate", gt=0)
    value_clip: float = cfg_field(0.2, "value clipping range around the rollout-time values (0 = off)", ge=0)


@dataclass
class PPORewardModelConfig:
    path: str = cfg_field("", "trained reward model folder (rl-reason train recipes/rm.yaml writes RUN/final); empty = verifier only")
    weight: float = cfg_field(1.0, "weight of the RM score in the reward")
    verifier_weight: float = cfg_field(0.0, "weight of the verifier reward (reward.* weights inside it); RM for style, verifier for correctness")


@dataclass
class GAEConfig:
    gamma: float = cfg_field(1.0, "discount")
    lam: float = cfg_field(0.95, "GAE lambda")
    whiten_advantages: bool = cfg_field(True, "whiten advantages over the batch")
    kl_in_reward: bool = cfg_field(True, "k1 KL penalty (algorithm.kl_coef) per token in the reward (InstructGPT); false = KL in the loss")


@dataclass
class PPOConfig(GRPOConfig, trainer="ppo", output_dir="runs/ppo", run_files="metrics.jsonl, checkpoints/, tensorboard/"):
    """GRPO's sections (PPO rolls out, rewards, samples and updates the actor with GRPO's code)
    except the advantage estimator: PPO's advantages are always GAE over the critic."""

    algorithm: PolicyUpdateConfig = cfg_field(PolicyUpdateConfig, "policy loss and KL (advantages: gae.*)")
    critic: PPOCriticConfig = cfg_field(PPOCriticConfig, "value model")
    reward_model: PPORewardModelConfig = cfg_field(PPORewardModelConfig, "learned reward model and its mix with the verifiers")
    gae: GAEConfig = cfg_field(GAEConfig, "GAE and the KL penalty's placement")

    def check(self) -> None:
        if not self.reward_model.path and self.reward_model.verifier_weight == 0:
            raise ConfigError("reward_model.path is empty and reward_model.verifier_weight is 0: there is no reward")
        if self.critic.init == "reward_model" and not self.reward_model.path:
            raise ConfigError("critic.init='reward_model' needs reward_model.path (or use critic.init=actor)")
        if self.critic.init == "actor" and self.model.load_in_4bit:
            raise ConfigError("critic.init='actor' copies the actor's weights, which model.load_in_4bit holds in 4 bits; "
                              "use critic.init=reward_model or a model path")
