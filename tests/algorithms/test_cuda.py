"""Every function gives the same numbers on a CUDA device as on CPU (no stray CPU tensors)."""

import pytest
import torch

from rl_reason.algorithms import (
    ADVANTAGES,
    POLICY_LOSSES,
    PREFERENCE_LOSSES,
    aggregate_loss,
    clipped_value_loss,
    entropy_from_logits,
    explained_variance,
    filter_groups_by_std,
    kl_penalty,
    logprob_mismatch_metrics,
    truncated_is_weights,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _batch(device):
    g = torch.Generator().manual_seed(0)
    B, T = 8, 16
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    tensors = dict(
        mask=(torch.arange(T)[None, :] < lengths[:, None]).float(),
        scores=torch.randint(0, 2, (B,), generator=g).float(),
        groups=torch.arange(B) // 4,
        values=torch.randn(B, T, generator=g),
        logp=-torch.rand(B, T, generator=g) * 3,
        old=-torch.rand(B, T, generator=g) * 3,
        logits=torch.randn(B, T, 5, generator=g),
    )
    return {k: v.to(device) for k, v in tensors.items()}


def _run_all(device):
    b = _batch(device)
    out = {}
    for name in ADVANTAGES.names():
        out[name] = ADVANTAGES.get(name)(scores=b["scores"], response_mask=b["mask"], group_ids=b["groups"],
                                         values=b["values"], gamma=0.99, lam=0.95)
    adv = out["grpo"][0]
    for name in POLICY_LOSSES.names():
        loss_mat, metrics = POLICY_LOSSES.get(name)(logp=b["logp"], old_logp=b["old"], advantages=adv,
                                                    response_mask=b["mask"], clip_ratio_c=3.0,
                                                    is_weights=truncated_is_weights(b["old"], b["logp"]))
        out[name] = (aggregate_loss(loss_mat, b["mask"], "seq-mean-token-sum-norm", max_len=16), metrics)
    out["kl"] = kl_penalty(b["logp"], b["old"], "k3")
    out["entropy"] = entropy_from_logits(b["logits"])
    out["mismatch"] = logprob_mismatch_metrics(b["logp"], b["old"], b["mask"])
    out["filter"] = filter_groups_by_std(b["scores"], b["groups"]).keep
    sums = (b["logp"] * b["mask"]).sum(-1)
    lengths = b["mask"].sum(-1)
    for name in PREFERENCE_LOSSES.names():
        out[name] = PREFERENCE_LOSSES.get(name)(chosen_logps=sums[:4], rejected_logps=sums[4:],
                                                ref_chosen_logps=sums[4:], ref_rejected_logps=sums[:4],
                                                chosen_lengths=lengths[:4], rejected_lengths=lengths[4:])
    out["value"] = clipped_value_loss(values=b["values"], old_values=b["values"] * 0.9, returns=out["gae"][1],
                                      response_mask=b["mask"])
    out["ev"] = explained_variance(b["values"], out["gae"][1], b["mask"])
    return out


def test_cuda_matches_cpu():
    cpu, cuda = _run_all("cpu"), _run_all("cuda")
    torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-5, check_device=False)
