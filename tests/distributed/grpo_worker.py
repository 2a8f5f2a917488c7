"""One GRPO update through the real trainer code, run by test_grpo_data_parallel.py under
``python`` (one process), ``torchrun`` (DDP) or ``deepspeed`` (ZeRO), writing results to OUT.

usage: grpo_worker.py OUT ENGINE PHASE   (PHASE: update | empty_rank | critic | save | resume | zero3_generate)
The trainer's __init__ would also load datasets, verifiers and a rollout engine, which this
test does not exercise; the worker sets the attributes the update and checkpoint paths use.
"""

import sys
from pathlib import Path

import torch

from rl_reason.algorithms import AGGREGATION_MODES
from rl_reason.config import load_config
from rl_reason.distributed import setup as dist
from rl_reason.models import tiny_model
from rl_reason.trainers.common.checkpoint import CheckpointManager
from rl_reason.trainers.entropy_control import EntropyControl
from rl_reason.trainers.grpo import Batch, GRPOTrainer, _build_train_engine, _share_per_rank
from rl_reason.trainers.grpo_config import GRPOConfig

GROUPS, N, PROMPT, RESPONSE = 3, 2, 3, 5
# Valid response tokens per row (rows 2k, 2k+1 form group k); a 0 is an overlong-filtered row.
LENGTHS = [5, 1, 3, 0, 4, 2]
# 4 prompts per step (2 per rank), but one group was dropped (e.g. unscorable): rank 0 keeps
# groups 0-1, rank 1 only group 2. Unequal shares exercise the global normalisers and the
# weight-0 padding micro-batches.
RANK_GROUPS = {1: [range(GROUPS)], 2: [range(0, 2), range(2, 3)]}
# Dynamic sampling dropped every group rank 1 drew: it must still join each collective.
EMPTY_RANK_GROUPS = {1: [range(0, 2)], 2: [range(0, 2), range(0)]}


def global_batch(step: int) -> Batch:
    g = torch.Generator().manual_seed(step)
    rows = GROUPS * N
    input_ids = torch.randint(3, 250, (rows, PROMPT + RESPONSE), generator=g)
    input_ids[:, :PROMPT] = input_ids[::N, :PROMPT].repeat_interleave(N, dim=0)  # a group shares its prompt
    mask = torch.tensor([[1.0] * n + [0.0] * (RESPONSE - n) for n in LENGTHS])
    attention = torch.cat([torch.ones(rows, PROMPT, dtype=torch.long), mask.long()], 1)
    scores = torch.rand(rows, generator=g)
    return Batch(input_ids, attention, mask, None, scores, torch.arange(rows) // N)


def local_batch(batch: Batch, world: int, rank: int, shares=RANK_GROUPS) -> Batch:
    groups = shares[world][rank]
    idx = torch.tensor([gi * N + i for gi in groups for i in range(N)], dtype=torch.long)
    return Batch(batch.input_ids[idx], batch.attention_mask[idx], batch.response_mask[idx], None, batch.scores[idx],
                 batch.group_ids[idx])


def make_trainer(engine: str, mode: str, deepspeed_config: str = "recipes/deepspeed/zero2.json",
                 config_class=GRPOConfig, extra=()) -> GRPOTrainer:
    cfg = load_config(config_class, None, [
        f"algorithm.loss_agg_mode={mode}", f"rollout.n={N}", f"rollout.max_new_tokens={RESPONSE}",
        "train.prompts_per_step=4", "train.micro_batch_size=2", "train.ppo_epochs=2", "train.lr=0.001",
        "train.max_grad_norm=0.5", f"distributed.engine={engine}", f"distributed.deepspeed_config={deepspeed_config}",
        "distributed.timeout_s=120", *extra])
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.cfg, trainer.step, trainer.ref_model, trainer.teacher = cfg, 1, None, None
    trainer.dist = dist.init_distributed(cfg.distributed.backend, cfg.distributed.timeout_s, "cpu")
    torch.manual_seed(0)
    trainer.model, trainer.tokenizer = tiny_model("llama", seed=0)
    trainer.prompts_per_rank = _share_per_rank(cfg, trainer.dist.world_size)
    trainer.train_engine = _build_train_engine(trainer.model, cfg, trainer.prompts_per_rank)
    trainer.entropy_control = EntropyControl(cfg)
    return trainer


def update(trainer: GRPOTrainer, step: int, shares=RANK_GROUPS) -> dict[str, float]:
    trainer.step = step
    batch = local_batch(global_batch(step), trainer.dist.world_size, trainer.dist.rank, shares)
    if not batch.input_ids.shape[0]:
        batch = trainer.build_batch([])  # what a rank whose groups were all dropped trains on
    old, ref = trainer.reference_logprobs(batch)
    return dist.mean_metrics(trainer.update_policy(batch, old, ref, trainer.advantages(batch)))


def full(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of the whole tensor (FSDP2 holds a DTensor shard of each gradient: a collective)."""
    from torch.distributed.tensor import DTensor

    return (tensor.full_tensor() if isinstance(tensor, DTensor) else tensor).clone()


def snapshot(trainer: GRPOTrainer, stats: dict[str, float]) -> dict:
    module = trainer.train_engine.module
    grads = {n: full(p.grad) for n, p in module.named_parameters() if p.grad is not None}
    with trainer.train_engine.full_weights():  # ZeRO-3 holds only a shard of each parameter
        params = {n: p.detach().clone() for n, p in module.named_parameters()}
    return {"stats": stats, "params": params, "grads": grads}


def critic_update(engine: str) -> dict:
    """PPO's critic, initialised from the (sharded, under FSDP2) actor, on the unequal shares of
    RANK_GROUPS: values (lockstep no-grad forwards), then two value updates against seeded returns."""
    from rl_reason.trainers.post_config import PPOConfig
    from rl_reason.trainers.ppo import Critic

    actor = make_trainer(engine, "token-mean", config_class=PPOConfig,
                         extra=["critic.init=actor", "critic.lr=0.01", "reward_model.verifier_weight=1.0"])
    critic = Critic(actor.cfg, actor)
    full = global_batch(1)
    returns = torch.rand(full.response_mask.shape, generator=torch.Generator().manual_seed(3)) * full.response_mask
    batch = local_batch(full, actor.dist.world_size, actor.dist.rank)
    groups = RANK_GROUPS[actor.dist.world_size][actor.dist.rank]
    rows = torch.tensor([gi * N + i for gi in groups for i in range(N)], dtype=torch.long)
    values = actor.lockstep_forward(lambda ix: critic.values_of(batch, ix), batch)
    stats = dist.mean_metrics(critic.update(batch, values, returns[rows], step=1))
    with critic.engine.full_weights():
        return {"stats": stats, "params": {n: p.detach().clone() for n, p in critic.module.named_parameters()}}


def zero3_generate(out: Path) -> dict:
    """ZeRO-3 with every parameter partitioned: HF rollouts whose ranks stop after different
    numbers of decode steps (rank r: 2 + 5r greedy tokens), then the GRPO update."""
    import json

    from rl_reason.rollout import SamplingParams, get_engine

    config = json.loads(Path("recipes/deepspeed/zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0  # tiny tensors are sharded too
    path = out / f"zero3_rank{dist.rank()}.json"
    path.write_text(json.dumps(config))
    trainer = make_trainer("deepspeed", "token-mean", str(path))
    shard_sizes = [p.numel() for p in trainer.model.parameters()]
    engine = get_engine("hf", model=trainer.model, tokenizer=trainer.tokenizer)
    params = SamplingParams(temperature=0.0, max_new_tokens=2 + 5 * dist.rank(), seed=0)
    with trainer.train_engine.full_weights():
        completion = engine.generate(["1 + 2 = 3. 4 + 5 ="], n=1, params=params)[0][0]
    return {"tokens": completion.token_ids, "sharded": all(n == 0 for n in shard_sizes),
            "update": snapshot(trainer, update(trainer, 1))}


def main(out: Path, engine: str, phase: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if phase == "zero3_generate":
        results = zero3_generate(out)
    elif phase == "update":
        for mode in AGGREGATION_MODES:
            trainer = make_trainer(engine, mode)
            results[mode] = snapshot(trainer, update(trainer, 1))
    elif phase == "critic":
        results = critic_update(engine)
    elif phase == "empty_rank":
        trainer = make_trainer(engine, "seq-mean-token-mean")
        results["step1"] = snapshot(trainer, update(trainer, 1, EMPTY_RANK_GROUPS))
        results["step2"] = snapshot(trainer, update(trainer, 2, EMPTY_RANK_GROUPS))
    else:
        trainer = make_trainer(engine, "token-mean")
        checkpoints = CheckpointManager(out / "checkpoints")
        if phase == "save":
            update(trainer, 1)
            checkpoints.save_engine(1, trainer.train_engine, trainer.tokenizer, {"rank_marker": dist.rank()})
        else:
            results["state"] = CheckpointManager.load_engine(checkpoints.latest(), trainer.train_engine)
        results["step2"] = snapshot(trainer, update(trainer, 2))
    torch.save(results, out / f"{phase}_{engine}_world{dist.world_size()}_rank{dist.rank()}.pt")
    dist.finish_distributed()


if __name__ == "__main__":
    # the deepspeed launcher adds --local_rank=N (also in the environment as LOCAL_RANK)
    args = [a for a in sys.argv[1:] if not a.startswith("--local_rank")]
    main(Path(args[0]), args[1], args[2])
