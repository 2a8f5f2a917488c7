"""Loss aggregation: hand examples, and gradient invariance to micro-batching, gradient
accumulation and a simulated data-parallel split, for every mode."""

import pytest
import torch

from rl_reason.algorithms import AGGREGATION_MODES, POLICY_LOSSES, aggregate_loss, local_counts, step_normalisers

LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 50.0, 60.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_hand_examples():
    # 4 valid tokens: (1 + 2 + 3 + 4) / 4
    assert aggregate_loss(LOSS, MASK, "token-mean").item() == pytest.approx((1 + 2 + 3 + 4) / 4)
    # per-sequence means 2 and 4, then their mean
    assert aggregate_loss(LOSS, MASK, "seq-mean-token-mean").item() == pytest.approx(((1 + 2 + 3) / 3 + 4 / 1) / 2)
    # token sums 6 and 4 over (2 sequences * max_len 8)
    assert aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", max_len=8).item() == pytest.approx((6 + 4) / (2 * 8))


def test_global_normalisers_and_dp_size_are_applied():
    # local token sum 10, over 20 tokens on all ranks, times 2 ranks (cancelling DDP's average)
    assert aggregate_loss(LOSS, MASK, "token-mean", global_num_tokens=20, dp_size=2).item() == \
        pytest.approx(10 * 2 / 20)
    assert aggregate_loss(LOSS, MASK, "seq-mean-token-mean", global_num_seqs=5).item() == pytest.approx(6 / 5)
    assert aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", global_num_seqs=5, max_len=4).item() == \
        pytest.approx(10 / (5 * 4))


def test_empty_sequences_count_nowhere():
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    counts = local_counts(mask)
    assert (counts.num_tokens, counts.num_seqs) == (2, 1)
    assert aggregate_loss(LOSS, mask, "seq-mean-token-mean").item() == pytest.approx((1 + 2) / 2)


def test_bad_mode_and_missing_max_len():
    with pytest.raises(ValueError, match="valid: token-mean, seq-mean-token-mean, seq-mean-token-sum-norm"):
        aggregate_loss(LOSS, MASK, "token_mean")
    with pytest.raises(ValueError, match="needs a positive constant max_len"):
        aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm")


# --- invariance -------------------------------------------------------------------------------
B, T, D = 8, 5, 3
LENGTHS = [5, 1, 3, 0, 4, 2, 5, 1]  # uneven, one fully masked (overlong-filtered) response
_g = torch.Generator().manual_seed(0)
X = torch.randn(B, T, D, generator=_g, dtype=torch.float64)
ADV = torch.randn(B, T, generator=_g, dtype=torch.float64)
OLD_SHIFT = 0.3 * torch.randn(B, T, generator=_g, dtype=torch.float64)
BATCH_MASK = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in LENGTHS], dtype=torch.float64)
W0 = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)


def _loss_matrix(w, rows):
    """A tiny 'model': token log-prob -softplus(x @ w), through the real DAPO clipped loss."""
    logp = -torch.nn.functional.softplus(X[rows] @ w)
    loss, _ = POLICY_LOSSES.get("ppo_clip")(logp=logp, old_logp=logp.detach() + OLD_SHIFT[rows],
                                            advantages=ADV[rows], response_mask=BATCH_MASK[rows],
                                            clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    return loss


def _full_batch_grad(mode):
    w = W0.clone().requires_grad_(True)
    aggregate_loss(_loss_matrix(w, list(range(B))), BATCH_MASK, mode, max_len=T).backward()
    return w.grad


def _split_grad(mode, ranks, use_global=True):
    """ranks: per rank, a list of micro-batches (row lists). Gradients accumulate over a rank's
    micro-batches (backward() sums) and are averaged over ranks (as DDP/DeepSpeed all-reduce)."""
    norm = step_normalisers(BATCH_MASK[rows] for micro in ranks for rows in micro)
    rank_grads = []
    for micro in ranks:
        w = W0.clone().requires_grad_(True)
        for rows in micro:
            kwargs = dict(global_num_tokens=norm.num_tokens, global_num_seqs=norm.num_seqs,
                          dp_size=len(ranks)) if use_global else {}
            aggregate_loss(_loss_matrix(w, rows), BATCH_MASK[rows], mode, max_len=T, **kwargs).backward()
        rank_grads.append(w.grad)
    return torch.stack(rank_grads).mean(0)


SPLITS = {
    "1 rank, micro 1 (8 accumulation steps)": [[[i] for i in range(8)]],
    "1 rank, micro 3 uneven": [[[0, 1, 2], [3, 4, 5], [6, 7]]],
    "2 ranks, micro 2": [[[0, 1], [2, 3]], [[4, 5], [6, 7]]],
    "2 ranks, uneven rows per rank": [[[0], [1, 2, 3, 4, 5]], [[6, 7]]],
    "4 ranks, micro 1, shuffled": [[[7], [2]], [[0], [5]], [[3], [6]], [[1], [4]]],
}


@pytest.mark.parametrize("mode", AGGREGATION_MODES)
@pytest.mark.parametrize("split", SPLITS, ids=list(SPLITS))
def test_gradient_is_invariant_to_micro_batching_and_dp(mode, split):
    torch.testing.assert_close(_split_grad(mode, SPLITS[split]), _full_batch_grad(mode), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", AGGREGATION_MODES)
def test_local_normalisers_break_invariance(mode):
    # The bug this guards against: each micro-batch normalised by its own counts. This shows the
    # invariance test above has the power to fail.
    naive = _split_grad(mode, SPLITS["2 ranks, uneven rows per rank"], use_global=False)
    assert not torch.allclose(naive, _full_batch_grad(mode), rtol=1e-6, atol=1e-8)
