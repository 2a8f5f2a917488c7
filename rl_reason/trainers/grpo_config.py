"""Typed config of the GRPO/DAPO trainer (torch-free, so ``rl-reason train --help`` is fast).

Every knob is one field with its default and help; cross-field checks run in ``__post_init__`` (``check()`` in the run configs)
so a bad recipe fails on load, before any model is downloaded or loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rl_reason.config import ConfigError, cfg_field
from rl_reason.distributed.config import DistributedConfig
from rl_reason.verifiers.math_verifier import VERIFY_TIMEOUT_S


@dataclass
class LoRAConfig:
    r: int = cfg_field(0, "LoRA rank: train low-rank adapters (peft) instead of every weight; 0 = off (full fine-tuning)", ge=0)
    alpha: float = cfg_field(32.0, "LoRA scale numerator: the adapter's update is multiplied by alpha / r", gt=0)
    dropout: float = cfg_field(0.0, "dropout on the adapter's input (0 keeps RL's old and new log-probs one function)", ge=0, lt=1)
    target_modules: list[str] = cfg_field(
        ["all-linear"], "module names that get adapters (e.g. q_proj,v_proj), or all-linear: every linear layer of the "
                        "decoder (not the output head)")

    def __post_init__(self):
        if not self.target_modules or ("all-linear" in self.target_modules and len(self.target_modules) > 1):
            raise ConfigError(f"model.lora.target_modules must be module names or all-linear alone, got {self.target_modules}")


@dataclass
class ModelConfig:
    name: str = cfg_field("smollm2-135m", "policy model: registry alias, hub id, local HF dir, .gguf file, or tiny:llama / tiny:qwen2 (random, for tests)")
    dtype: Literal["float32", "bfloat16", "float16"] = cfg_field("float32", "parameter dtype of the policy (and reference) model")
    device: str = cfg_field("cpu", "torch device of the trainer ('cpu', 'cuda', 'cuda:0')")
    max_prompt_tokens: int = cfg_field(256, "prompts longer than this (in tokens) are left out or an error (data.on_overlong), never cut", gt=0)
    max_seq_len: int = cfg_field(2048, "model context length budget: max_prompt_tokens + max_new_tokens must fit")
    lora: LoRAConfig = cfg_field(LoRAConfig, "low-rank adapters (peft); the reference model is then the base with the adapter off")
    load_in_4bit: bool = cfg_field(
        False, "QLoRA: hold the frozen base in 4-bit NF4 (bitsandbytes, CUDA only); needs model.lora.r > 0")

    def __post_init__(self):
        if self.load_in_4bit:
            self._check_4bit()

    def _check_4bit(self) -> None:
        import importlib.util

        if self.lora.r == 0:
            raise ConfigError("model.load_in_4bit needs model.lora.r > 0: a 4-bit base can only be trained through adapters")
        if not self.device.startswith("cuda"):
            raise ConfigError(f"model.load_in_4bit needs a CUDA device (bitsandbytes 4-bit kernels), but "
                              f"model.device is {self.device!r}; set model.load_in_4bit=false on this machine")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("model.load_in_4bit needs the bitsandbytes package (pip install bitsandbytes), "
                              "which is not installed")


@dataclass
class DataConfig:
    train: str = cfg_field("arithmetic:train", "training prompts: dataset name[:split] or JSONL path (data_pipelines.load_dataset)")
    eval: str = cfg_field("", "held-out prompts for periodic eval (same syntax); empty disables eval")
    template: Literal["chat_boxed", "chat_boxed_system", "base_boxed", "chat_code", "base_code"] = cfg_field("chat_boxed", "prompt template (data_pipelines.render_prompt)")
    train_limit: int = cfg_field(0, "use only the first N training examples (0 = all)", ge=0)
    eval_limit: int = cfg_field(0, "use only the first N held-out examples (0 = all)", ge=0)
    data_dir: str = cfg_field("", "folder of bundled data files (empty: RL_REASON_DATA_DIR or ../shared/data)")
    fields: str = cfg_field(
        "", "field mapping of JSONL files in train/eval, as `rl-reason data prepare --fields` (e.g. "
            "'prompt=question,tests=as_is,id='); empty: the Example schema's keys (rows with an answer, tests or both)")
    on_overlong: Literal["filter", "error"] = cfg_field(
        "filter", "prompts longer than model.max_prompt_tokens: 'filter' leaves them out (counted in one warning), "
                  "'error' stops before training")

    def __post_init__(self):
        if not self.fields:
            return
        from rl_reason.data_pipelines.registry import is_data_file, parse_field_map

        try:
            parse_field_map(self.fields)
        except ValueError as e:
            raise ConfigError(f"data.fields: {e}") from None
        if not any(is_data_file(name) for name in (self.train, self.eval) if name):
            raise ConfigError("data.fields maps the keys of JSONL files, but neither data.train nor data.eval is one")


@dataclass
class RolloutConfig:
    engine: Literal["hf", "vllm"] = cfg_field("hf", "rollout engine: 'hf' (transformers generate, shares the policy's weights) or 'vllm'")
    n: int = cfg_field(8, "completions per prompt (the GRPO group size)", ge=2, why="with one completion per prompt every group advantage is 0")
    temperature: float = cfg_field(1.0, "sampling temperature of rollouts (also used to scale trainer log-probs)", gt=0, why="rollouts are sampled")
    top_p: float = cfg_field(1.0, "nucleus sampling threshold")
    top_k: int = cfg_field(0, "top-k sampling (0 = off)")
    max_new_tokens: int = cfg_field(256, "response length limit; responses hitting it have finish_reason 'length'", gt=0)
    stop: list[str] = cfg_field([], "strings that end a response (rollouts and eval), e.g. the end of a code block; "
                                    "the text is cut before the string")
    gpu_memory_utilization: float = cfg_field(0.5, "vLLM only: fraction of GPU memory for the rollout engine")


@dataclass
class PRMRewardConfig:
    path: str = cfg_field("", "trained process reward model folder (RUN/final of recipes/prm.yaml); empty = off")
    aggregation: Literal["min", "last", "mean"] = cfg_field(
        "min", "how a response's step scores become one (algorithms.STEP_AGGREGATIONS): its weakest step, its last, the mean")
    weight: float = cfg_field(0.3, "reward = (1 - weight) * verifier reward + weight * PRM score (below 0.5 a wrong "
                                   "answer never outscores a right one)", ge=0, le=1)


@dataclass
class RewardConfig:
    math_weight: float = cfg_field(1.0, "weight of the math verifier score (examples with an 'answer')")
    code_weight: float = cfg_field(1.0, "weight of the code verifier score (examples with 'tests')")
    format_weight: float = cfg_field(0.0, "weight of the format check score (0 = off)")
    format_pattern: Literal["boxed", "think_answer"] = cfg_field("boxed", "format the format reward checks")
    verifier_timeout: float = cfg_field(VERIFY_TIMEOUT_S, "seconds per answer before the math/code verifier reports 'timeout'")
    verifier_workers: int = cfg_field(2, "math verifier worker processes")
    answer_format: Literal["full", "strict"] = cfg_field(
        "full", "math answers read by the full extraction chain, or 'strict': committed answers only (box, answer phrase)"
    )
    sandbox: Literal["process", "docker"] = cfg_field("process", "code sandbox backend")
    prm: PRMRewardConfig = cfg_field(PRMRewardConfig, "a process reward model's score mixed into the verifier reward")


@dataclass
class PolicyUpdateConfig:
    """The actor update's knobs, which GRPO and PPO share (PPO's advantages are always GAE)."""

    policy_loss: Literal["ppo_clip", "gspo", "gmpo", "clip_cov", "kl_cov", "reinforce"] = cfg_field(
        "ppo_clip", "policy loss (rl_reason.algorithms.POLICY_LOSSES); gmpo = geometric mean of token ratios, "
                    "clipped in log space (pair it with seq-mean-token-mean); clip_cov / kl_cov = PPO with the "
                    "gradient of high-covariance tokens cut / KL-penalised (entropy.* knobs)")
    clip_low: float = cfg_field(0.2, "PPO ratio clip below 1 (ratio >= 1 - clip_low); gmpo: in log space (ratio >= exp(-clip_low), paper 0.4)")
    clip_high: float = cfg_field(0.2, "PPO ratio clip above 1; DAPO clip-higher uses 0.28; gmpo: in log space (ratio <= exp(clip_high))")
    clip_ratio_c: float = cfg_field(0.0, "dual-clip bound for negative advantages (0 = off; verl uses 3.0)")
    loss_agg_mode: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = cfg_field(
        "token-mean",
        "how token losses become one number: token-mean over the global batch (DAPO), seq-mean-token-mean "
        "(original GRPO, favours long wrong answers), seq-mean-token-sum-norm (Dr.GRPO, no length bias)",
    )
    kl_coef: float = cfg_field(0.0, "weight of the KL(policy || reference) loss; 0 = no reference model is loaded")
    kl_kind: Literal["k1", "k2", "k3"] = cfg_field("k3", "KL estimator (Schulman's k1/k2/k3)")
    entropy_coef: float = cfg_field(0.0, "entropy bonus weight (0 = off); with entropy.target > 0, its starting value")
    tis_cap: float = cfg_field(0.0, "truncated importance sampling: weight token losses by min(p_trainer/p_rollout, cap); 0 = off")


@dataclass
class AlgorithmConfig(PolicyUpdateConfig):
    advantage: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"] = cfg_field("grpo", "advantage estimator (rl_reason.algorithms.ADVANTAGES)")
    scale_by_std: bool = cfg_field(True, "grpo, reinforce_pp, reinforce_pp_baseline: divide by the group std (grpo) or whiten over the batch's loss tokens")


@dataclass
class DapoConfig:
    dynamic_sampling: bool = cfg_field(False, "drop groups whose rewards are all equal and sample more prompts until the batch is full")
    std_eps: float = cfg_field(1e-6, "a group is kept when its reward std exceeds this")
    max_sampling_rounds: int = cfg_field(4, "cap on rollout rounds per step with dynamic sampling; then train on what was kept")
    overlong_filter: bool = cfg_field(False, "mask truncated responses (finish_reason 'length') out of the loss")
    overlong_buffer: int = cfg_field(0, "soft overlong punishment: penalise the last N tokens before max_new_tokens linearly (0 = off)")
    overlong_penalty: float = cfg_field(1.0, "reward penalty at max_new_tokens (reached linearly across the buffer)")


@dataclass
class EntropyConfig:
    target: float = cfg_field(
        0.0, "adaptive entropy bonus: target mean token entropy (nats); the coefficient rises by coef_step per step "
             "while the entropy is below it and falls while above (0 = off: algorithm.entropy_coef stays fixed)", ge=0)
    coef_step: float = cfg_field(5e-4, "adaptive entropy bonus: change of the coefficient per step", ge=0)
    max_coef: float = cfg_field(1e-2, "adaptive entropy bonus: upper bound of the coefficient", ge=0)
    cov_ratio: float = cfg_field(2e-4, "clip_cov / kl_cov: share of valid tokens whose gradient is cut / KL-penalised", gt=0, le=1)
    clip_cov_lb: float = cfg_field(1.0, "clip_cov: only tokens with covariance above this are cut")
    clip_cov_ub: float = cfg_field(5.0, "clip_cov: only tokens with covariance below this are cut")
    kl_cov_coef: float = cfg_field(1.0, "kl_cov: weight of |logp - old_logp| on the selected tokens")

    def __post_init__(self):
        if self.clip_cov_lb >= self.clip_cov_ub:
            raise ConfigError(f"entropy.clip_cov_lb ({self.clip_cov_lb}) must be below clip_cov_ub ({self.clip_cov_ub})")


@dataclass
class ShapingConfig:
    mix: Literal["weighted_sum", "gdpo"] = cfg_field(
        "weighted_sum",
        "how the weighted rewards (math/code/format) become one: weighted_sum, or gdpo (normalise each within its "
        "group, then sum; with algorithm.advantage=reinforce_pp_baseline this is the GDPO paper's batch normalisation)")
    length_penalty: float = cfg_field(
        0.0, "group-relative length penalty on correct responses only: the longest correct one in a group loses this "
             "much, the shortest nothing; wrong ones are untouched (0 = off, must be < 1)", ge=0, lt=1, why="so a correct answer stays above a wrong one")
    repetition_penalty: float = cfg_field(0.0, "subtract this times the share of repeated n-grams in the response (0 = off)", ge=0)
    repetition_ngram: int = cfg_field(4, "n-gram size of the repetition penalty", gt=0)


@dataclass
class CurriculumConfig:
    mode: Literal["off", "skip", "middle"] = cfg_field(
        "off", "online difficulty curriculum from a per-prompt pass-rate table: skip (pass over prompts measured solved "
               "or hopeless), middle (sample in proportion to floor + (1 - floor) * 4p(1-p)), off (seeded epochs)")
    solved: float = cfg_field(1.0, "skip: a prompt whose pass rate is >= this is solved")
    hopeless: float = cfg_field(0.0, "skip: a prompt whose pass rate is <= this is hopeless (-1 = never)")
    floor: float = cfg_field(0.05, "middle: sampling weight of a prompt at pass rate 0 or 1 (keeps re-measuring them)", ge=0, le=1)
    ema: float = cfg_field(1.0, "pass rate update: p = (1 - ema) * p + ema * group pass rate (1 = the latest group only)", gt=0, le=1)

    def __post_init__(self):
        if self.hopeless >= self.solved:
            raise ConfigError(f"curriculum.hopeless ({self.hopeless}) must be below curriculum.solved ({self.solved})")


@dataclass
class DistillConfig:
    teacher: str = cfg_field(
        "", "on-policy distillation: a teacher model (same tokenizer) that scores the policy's sampled tokens; each "
            "token's advantage gains -coef * (log p_policy - log p_teacher), the reverse KL's sample (empty = off)")
    coef: float = cfg_field(1.0, "weight of the per-token distillation advantage", ge=0)


@dataclass
class AdamWConfig:
    """The optimiser fields every trainer's ``train`` section shares (AdamW, LR schedule, clipping)."""

    lr: float = cfg_field(1e-6, "AdamW learning rate", gt=0)
    weight_decay: float = cfg_field(0.0, "AdamW weight decay", ge=0)
    betas: list[float] = cfg_field([0.9, 0.999], "AdamW betas")
    warmup_steps: int = cfg_field(0, "linear learning-rate warm-up, in optimizer updates", ge=0)
    lr_schedule: Literal["constant", "cosine"] = cfg_field("constant", "learning-rate schedule after warm-up")
    max_grad_norm: float = cfg_field(1.0, "gradient clipping norm (0 = off)", ge=0)
    gradient_checkpointing: bool = cfg_field(False, "recompute activations in backward to save memory")

    def __post_init__(self):
        if len(self.betas) != 2:
            raise ConfigError(f"train.betas must have two values, got {self.betas}")


@dataclass
class TrainConfig(AdamWConfig):
    steps: int = cfg_field(100, "optimizer steps of rollout + update (each step samples prompts_per_step prompts)", gt=0)
    time_budget_min: float = cfg_field(
        0.0, "stop after the first step that ends this many minutes after training started (0 = off): the last "
             "eval and checkpoint then run at that step, so runs can be compared at the same wall-clock budget", ge=0)
    prompts_per_step: int = cfg_field(8, "prompts (groups) per step; sequences per step = prompts_per_step * rollout.n", gt=0)
    ppo_epochs: int = cfg_field(1, "passes over each rollout batch", gt=0)
    mini_batches: int = cfg_field(1, "optimizer updates per epoch; 1 = one update per batch (on-policy)", gt=0)
    micro_batch_size: int = cfg_field(8, "sequences per forward/backward (gradient accumulation; does not change the result)", gt=0)
    share_prompt_forward: bool = cfg_field(
        True, "micro-batches hold whole groups and run each prompt through the model once, its keys/values reused by "
              "all the group's responses (same loss to fp rounding, fewer FLOPs); ignored with gradient_checkpointing, "
              "which cannot keep a cache, unless pack_tokens is on")
    pack_tokens: int = cfg_field(
        0, "padding-free forwards: pack each micro-batch's sequences first-fit into rows of at most this many tokens "
           "(a longer sequence gets its own row), positions restarting per sequence; same log-probs to fp rounding. "
           "With share_prompt_forward a group's prompt is packed once before its responses (sdpa or eager attention "
           "only); works with gradient_checkpointing; 0 = off (padded rows)", ge=0)


@dataclass
class WarmStartConfig:
    """Rejection-sampling fine-tuning before RL (expert iteration / RFT): sample the policy on the
    training prompts with the rollout settings, keep its verified-correct answers, fine-tune on them."""

    steps: int = cfg_field(0, "SFT updates on the policy's own verified-correct samples before RL (0 = off)", ge=0)
    prompts: int = cfg_field(64, "training prompts sampled (data.train, data.template, rollout.temperature/max_new_tokens)", gt=0)
    n: int = cfg_field(8, "samples per prompt", gt=0)
    batch_size: int = cfg_field(8, "correct samples per SFT update", gt=0)
    lr: float = cfg_field(1e-5, "SFT AdamW learning rate", gt=0)


@dataclass
class EvalConfig:
    every: int = cfg_field(0, "evaluate on data.eval every N steps, and before step 1 and after the last (0 = off)", ge=0)
    n: int = cfg_field(1, "samples per held-out prompt", gt=0)
    ks: list[int] = cfg_field([1], "pass@k values to report (each <= n)")
    temperature: float = cfg_field(0.0, "eval sampling temperature (0 = greedy)")
    max_new_tokens: int = cfg_field(0, "eval response limit (0 = rollout.max_new_tokens)")

    def __post_init__(self):
        bad = [k for k in self.ks if k <= 0 or k > self.n]
        if bad:
            raise ConfigError(f"eval.ks {bad} must lie in 1..eval.n={self.n}")


@dataclass
class LogConfig:
    tensorboard: bool = cfg_field(True, "also write TensorBoard event files under RUN_DIR/tensorboard")
    wandb: bool = cfg_field(False, "also log to Weights & Biases (needs the wandb package)")
    wandb_project: str = cfg_field("rl-reason", "W&B project name")
    progress: bool = cfg_field(True, "show a progress bar with ETA")
    samples_every: int = cfg_field(10, "write a few rollouts to RUN_DIR/samples.jsonl every N steps (0 = off)")


@dataclass
class SignalConfig:
    warn_after: int = cfg_field(
        3, "warn once, with likely causes, when the last N steps together have nearly no learning signal (0 = never)", ge=0)
    min_groups_with_variance: float = cfg_field(
        0.1, "steps have nearly no signal when at most this share of their groups have rewards that differ", ge=0, lt=1)


@dataclass
class CheckpointConfig:
    every: int = cfg_field(50, "save a checkpoint every N steps (and after the last step); 0 = only at the end")
    keep_last: int = cfg_field(2, "keep the newest K checkpoints", gt=0)


@dataclass
class RunConfig:
    """What every trainer's config holds: which trainer, the run folder, resume, seed, model,
    metric sinks, checkpoints and the data-parallel engine.

    A trainer's config names itself once, in its class line: ``class PPOConfig(GRPOConfig,
    trainer="ppo", output_dir="runs/ppo", run_files="...")`` makes ``trainer`` accept "ppo" only
    and ``output_dir`` default to runs/ppo, its help listing ``run_files``. Each class of the
    hierarchy writes its own cross-section checks in ``check()``; all of them run, base first, so
    a subclass cannot leave out its bases' checks."""

    trainer: str = cfg_field("", "which trainer runs this config")
    output_dir: str = cfg_field("runs/run", "run folder: metrics.jsonl, checkpoints/, tensorboard/")
    resume: str = cfg_field("auto", "'auto' (continue from the newest checkpoint in output_dir), 'never', or a checkpoint folder")
    seed: int = cfg_field(0, "seed of data order, sampling and initialisation; on CPU two runs of one recipe and seed "
                             "write the same records bit for bit but for wall-clock fields (same machine, torch build "
                             "and thread count; docs/cli.md, reproducible runs)")
    model: ModelConfig = cfg_field(ModelConfig, "the trained model and length limits")
    log: LogConfig = cfg_field(LogConfig, "metrics sinks")
    checkpoint: CheckpointConfig = cfg_field(CheckpointConfig, "checkpoints")
    distributed: DistributedConfig = cfg_field(
        DistributedConfig, "data-parallel engine: torch/DDP or DeepSpeed ZeRO (scripts/ launch it)")

    def __init_subclass__(cls, trainer: str = "", output_dir: str = "", run_files: str = "", **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if trainer:  # declared on the class before @dataclass collects its fields
            cls.__annotations__ = {"trainer": Literal[trainer], "output_dir": str, **cls.__dict__.get("__annotations__", {})}
            cls.trainer = cfg_field(trainer, "which trainer runs this config")
            cls.output_dir = cfg_field(output_dir, f"run folder: {run_files}")

    def __post_init__(self):
        for cls in reversed(type(self).__mro__):
            if "check" in cls.__dict__:
                cls.__dict__["check"](self)

    def check(self) -> None:
        if not self.resume:
            raise ConfigError("resume must be 'auto', 'never' or a checkpoint folder")


@dataclass
class RolloutRunConfig(RunConfig):
    """The sections the rollout -> reward -> policy update steps read (GRPO's trainer, and PPO's
    actor part through it), and the checks that tie them together."""

    data: DataConfig = cfg_field(DataConfig, "prompts")
    rollout: RolloutConfig = cfg_field(RolloutConfig, "generation")
    reward: RewardConfig = cfg_field(RewardConfig, "verifier rewards")
    dapo: DapoConfig = cfg_field(DapoConfig, "DAPO parts (clip-higher and token-mean live in algorithm)")
    shaping: ShapingConfig = cfg_field(ShapingConfig, "reward mixing (weighted sum / GDPO) and length / repetition shaping")
    curriculum: CurriculumConfig = cfg_field(CurriculumConfig, "online difficulty curriculum (per-prompt pass rates steer sampling)")
    train: TrainConfig = cfg_field(TrainConfig, "optimisation")
    eval: EvalConfig = cfg_field(EvalConfig, "periodic held-out evaluation")
    signal: SignalConfig = cfg_field(SignalConfig, "learning-signal check (groups whose rewards differ)")

    def check(self) -> None:
        seqs = self.sequences_per_step
        if seqs % self.train.mini_batches:
            raise ConfigError(
                f"train.prompts_per_step * rollout.n = {seqs} sequences must divide into train.mini_batches={self.train.mini_batches}"
            )
        if self.mini_batch_size % self.train.micro_batch_size:
            raise ConfigError(
                f"mini-batch of {self.mini_batch_size} sequences (prompts_per_step * n / mini_batches) is not a multiple "
                f"of train.micro_batch_size={self.train.micro_batch_size}"
            )
        if self.model.max_prompt_tokens + self.rollout.max_new_tokens > self.model.max_seq_len:
            raise ConfigError(
                f"model.max_prompt_tokens ({self.model.max_prompt_tokens}) + rollout.max_new_tokens "
                f"({self.rollout.max_new_tokens}) exceeds model.max_seq_len ({self.model.max_seq_len})"
            )
        if self.dapo.overlong_buffer >= self.rollout.max_new_tokens:
            raise ConfigError(
                f"dapo.overlong_buffer ({self.dapo.overlong_buffer}) must be smaller than rollout.max_new_tokens ({self.rollout.max_new_tokens})"
            )
        if self.eval.every and not self.data.eval:
            raise ConfigError("eval.every > 0 needs data.eval (held-out prompts)")

    @property
    def sequences_per_step(self) -> int:
        return self.train.prompts_per_step * self.rollout.n

    @property
    def mini_batch_size(self) -> int:
        return self.sequences_per_step // self.train.mini_batches


@dataclass
class GRPOConfig(RolloutRunConfig, trainer="grpo", output_dir="runs/grpo",
                 run_files="metrics.jsonl, checkpoints/, tensorboard/, plots"):
    algorithm: AlgorithmConfig = cfg_field(AlgorithmConfig, "advantage, loss, KL")
    entropy: EntropyConfig = cfg_field(EntropyConfig, "entropy control: adaptive entropy bonus, Clip-Cov / KL-Cov knobs")
    warm_start: WarmStartConfig = cfg_field(WarmStartConfig, "rejection-sampling fine-tuning before RL (counts toward train.time_budget_min)")
    distill: DistillConfig = cfg_field(DistillConfig, "on-policy distillation from a teacher (per-token reverse-KL advantage)")
