"""Same batch, same numbers as TRL (installed as a dev dependency).

TRL keeps its loss math inside trainer methods (`GRPOTrainer._compute_loss`,
`DPOTrainer._compute_loss`, `CPOTrainer.cpo_loss`, `ORPOTrainer.odds_ratio_loss`). Building a
trainer needs a model, a dataset and minutes, so these tests call those methods unbound, with
`self` a namespace holding only the attributes they read and a stub model that returns the
fixed log-probs. The loss math that runs is TRL's own code. Checked against TRL 1.16.
"""

import os
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # we import trl.experimental on purpose
pytest.importorskip("trl")
from trl.experimental.cpo.cpo_trainer import CPOTrainer  # noqa: E402
from trl.experimental.gmpo.gmpo_trainer import GMPOTrainer  # noqa: E402
from trl.experimental.orpo.orpo_trainer import ORPOTrainer  # noqa: E402
from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402
from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: E402
from trl.trainer.kto_trainer import KTOTrainer  # noqa: E402

from rl_reason.algorithms import (  # noqa: E402
    ADVANTAGES,
    POLICY_LOSSES,
    PREFERENCE_LOSSES,
    UNPAIRED_LOSSES,
    aggregate_loss,
)

_identity_accelerator = SimpleNamespace(
    device=torch.device("cpu"), num_processes=1, sync_gradients=True,
    gather=lambda x: x, gather_for_metrics=lambda x: x, reduce=lambda x, reduction="sum": x,
)

# --- GRPO / DAPO policy loss ------------------------------------------------------------------
B, T = 6, 7
_g = torch.Generator().manual_seed(0)
COMPLETION_MASK = torch.tensor([[1] * n + [0] * (T - n) for n in (7, 3, 5, 1, 6, 2)])
OLD_LOGP = -torch.rand(B, T, generator=_g, dtype=torch.float64) * 3
# current log-probs moved by up to +-0.4 so that both clip sides bind on some tokens
LOGP0 = OLD_LOGP + (torch.rand(B, T, generator=_g, dtype=torch.float64) - 0.5) * 0.8
SCORES = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
GROUPS = torch.tensor([0, 0, 0, 1, 1, 1])


def _trl_grpo_loss(loss_type, logp, advantages, importance_sampling_level="token"):
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=importance_sampling_level, beta=0.0, loss_type=loss_type,
        epsilon_low=0.2, epsilon_high=0.28, use_vllm=False, _entropy_bonus_enabled=False,
        args=SimpleNamespace(delta=None, steps_per_generation=1),
        model=SimpleNamespace(training=True), accelerator=_identity_accelerator,
        current_gradient_accumulation_steps=1, max_completion_length=T,
        _metrics={"train": defaultdict(list)},
    )
    inputs = {
        "prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": COMPLETION_MASK,
        "advantages": advantages, "old_per_token_logps": OLD_LOGP,
        "num_items_in_batch": COMPLETION_MASK.sum(),
    }
    return GRPOTrainer._compute_loss(stub, None, inputs)


@pytest.mark.parametrize("trl_loss_type, policy_loss, mode, level", [
    ("dapo", "ppo_clip", "token-mean", "token"),
    ("grpo", "ppo_clip", "seq-mean-token-mean", "token"),
    ("dr_grpo", "ppo_clip", "seq-mean-token-sum-norm", "token"),
    ("grpo", "gspo", "seq-mean-token-mean", "sequence"),  # TRL's GSPO = sequence-level IS
])
def test_grpo_family_loss_and_gradient_match_trl(trl_loss_type, policy_loss, mode, level):
    # TRL's default advantage: (r - group mean) / (group std + 1e-4), one value per sequence
    adv, _ = ADVANTAGES.get("grpo")(scores=SCORES, response_mask=COMPLETION_MASK, group_ids=GROUPS, eps=1e-4)
    adv = adv[:, 0].double()

    logp_trl = LOGP0.clone().requires_grad_(True)
    trl_loss = _trl_grpo_loss(trl_loss_type, logp_trl, adv, level)
    trl_loss.backward()

    logp = LOGP0.clone().requires_grad_(True)
    mask = COMPLETION_MASK.double()
    loss_mat, metrics = POLICY_LOSSES.get(policy_loss)(
        logp=logp, old_logp=OLD_LOGP, advantages=adv[:, None].expand(B, T), response_mask=mask,
        clip_low=0.2, clip_high=0.28)
    ours = aggregate_loss(loss_mat, mask, mode, max_len=T)
    ours.backward()

    torch.testing.assert_close(ours, trl_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(logp.grad, logp_trl.grad, rtol=1e-12, atol=1e-14)
    if level == "token":
        assert 0 < metrics["clip_frac_high"] and 0 < metrics["clip_frac_low"]  # both sides exercised


def test_gmpo_loss_and_gradient_match_trl():
    # TRL's GMPO: exp(+-0.4) log-space clip, plain mean over sequences of -A_i * w_i
    adv, _ = ADVANTAGES.get("grpo")(scores=SCORES, response_mask=COMPLETION_MASK, group_ids=GROUPS, eps=1e-4)
    adv = adv[:, 0].double()
    logp_trl = (OLD_LOGP + (LOGP0 - OLD_LOGP) * 1.5).clone().requires_grad_(True)  # wider moves: the 0.4 clip binds
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp_trl, torch.zeros_like(logp_trl), None),
        top_entropy_quantile=1.0, beta=0.0, epsilon_low=0.4, epsilon_high=0.4,
        model=SimpleNamespace(training=True), accelerator=_identity_accelerator,
        current_gradient_accumulation_steps=1, _metrics={"train": defaultdict(list)},
    )
    inputs = {
        "prompt_ids": torch.ones(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": COMPLETION_MASK,
        "advantages": adv, "old_per_token_logps": OLD_LOGP,
    }
    trl_loss = GMPOTrainer._compute_loss(stub, None, inputs)
    trl_loss.backward()

    logp = logp_trl.detach().clone().requires_grad_(True)
    mask = COMPLETION_MASK.double()
    loss_mat, metrics = POLICY_LOSSES.get("gmpo")(
        logp=logp, old_logp=OLD_LOGP, advantages=adv[:, None] * mask, response_mask=mask, clip_low=0.4, clip_high=0.4)
    ours = aggregate_loss(loss_mat, mask, "seq-mean-token-mean")
    ours.backward()

    torch.testing.assert_close(ours, trl_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(logp.grad, logp_trl.grad, rtol=1e-12, atol=1e-14)
    trl_metrics = stub._metrics["train"]
    assert float(metrics["clip_frac_low"]) == pytest.approx(trl_metrics["clip_ratio/low_mean"][0])
    assert float(metrics["clip_frac_high"]) == pytest.approx(trl_metrics["clip_ratio/high_mean"][0])
    assert 0 < metrics["clip_frac_high"] and 0 < metrics["clip_frac_low"]  # both sides exercised


# --- DPO / IPO (DPOTrainer._compute_loss) -------------------------------------------------------
N, L = 3, 6  # pairs, sequence length (prompt token at position 0)
_h = torch.Generator().manual_seed(1)
COMP = torch.tensor([[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0],    # chosen
                     [0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]])   # rejected
TOKEN_LOGP = -torch.rand(2 * N, L - 1, generator=_h, dtype=torch.float64) * 2 * COMP[:, 1:]
REF_LOGPS = -torch.rand(2 * N, generator=_h, dtype=torch.float64) * 6


def _trl_dpo_loss(loss_type, beta, token_logp):
    zeros = torch.zeros(2 * N, L - 1)
    outputs = SimpleNamespace(log_probs=token_logp, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=_identity_accelerator, aux_loss_enabled=False,
        ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type],
        loss_weights=[1.0], beta=beta, label_smoothing=0.0, use_weighting=False,
        _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    ones = torch.ones(2 * N, L, dtype=torch.long)
    inputs = {"input_ids": ones, "attention_mask": ones,
              "completion_mask": COMP, "ref_chosen_logps": REF_LOGPS[:N], "ref_rejected_logps": REF_LOGPS[N:]}
    return DPOTrainer._compute_loss(stub, lambda **kw: outputs, inputs, return_outputs=False), stub._metrics["train"]


@pytest.mark.parametrize("name, trl_name", [("dpo", "sigmoid"), ("ipo", "ipo")])
def test_dpo_and_ipo_match_trl(name, trl_name):
    token_trl = TOKEN_LOGP.clone().requires_grad_(True)
    trl_loss, trl_metrics = _trl_dpo_loss(trl_name, 0.1, token_trl)
    trl_loss.backward()

    token = TOKEN_LOGP.clone().requires_grad_(True)
    sums, lengths = token.sum(-1), COMP.sum(-1).double()
    losses, metrics = PREFERENCE_LOSSES.get(name)(
        chosen_logps=sums[:N], rejected_logps=sums[N:], ref_chosen_logps=REF_LOGPS[:N],
        ref_rejected_logps=REF_LOGPS[N:], chosen_lengths=lengths[:N], rejected_lengths=lengths[N:], beta=0.1)
    losses.mean().backward()

    torch.testing.assert_close(losses.mean(), trl_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(token.grad, token_trl.grad, rtol=1e-12, atol=1e-14)
    for ours_key, trl_key in (("rewards/accuracy", "rewards/accuracies"), ("rewards/margin", "rewards/margins"),
                              ("rewards/chosen", "rewards/chosen"), ("rewards/rejected", "rewards/rejected")):
        assert metrics[ours_key].item() == pytest.approx(trl_metrics[trl_key][0], rel=1e-12, abs=1e-14)


# --- SimPO, cDPO (CPOTrainer.cpo_loss) and ORPO (ORPOTrainer.odds_ratio_loss) -----------------
CHOSEN = torch.tensor([-4.0, -9.0, -2.5], dtype=torch.float64)
REJECTED = torch.tensor([-6.0, -3.0, -8.0], dtype=torch.float64)
C_LEN = torch.tensor([3.0, 6.0, 2.0], dtype=torch.float64)
R_LEN = torch.tensor([4.0, 2.0, 5.0], dtype=torch.float64)


def _cpo_stub(loss_type, beta, label_smoothing=0.0, simpo_gamma=0.5):
    return SimpleNamespace(alpha=0.0, loss_type=loss_type, beta=beta, simpo_gamma=simpo_gamma,
                           label_smoothing=label_smoothing, accelerator=_identity_accelerator)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_simpo_matches_trl_cpo(label_smoothing):
    # TRL's CPO trainer feeds SimPO mean token log-probs (average_log_prob=True)
    trl_losses, trl_chosen, trl_rejected = CPOTrainer.cpo_loss(
        _cpo_stub("simpo", 2.0, label_smoothing, simpo_gamma=0.5), CHOSEN / C_LEN, REJECTED / R_LEN)
    losses, metrics = PREFERENCE_LOSSES.get("simpo")(
        chosen_logps=CHOSEN, rejected_logps=REJECTED, chosen_lengths=C_LEN, rejected_lengths=R_LEN,
        beta=2.0, gamma=0.5, label_smoothing=label_smoothing)
    torch.testing.assert_close(losses, trl_losses, rtol=1e-12, atol=1e-14)
    assert metrics["rewards/chosen"].item() == pytest.approx(trl_chosen.mean().item(), rel=1e-12)
    assert metrics["rewards/rejected"].item() == pytest.approx(trl_rejected.mean().item(), rel=1e-12)


def test_conservative_dpo_matches_trl_label_smoothing_formula():
    # CPO's sigmoid loss is DPO's conservative form without a reference: feeding it the
    # policy-minus-reference log-ratios gives cDPO exactly.
    ref_c, ref_r = CHOSEN - 1.0, REJECTED + 0.5
    trl_losses, _, _ = CPOTrainer.cpo_loss(_cpo_stub("sigmoid", 0.1, 0.2), CHOSEN - ref_c, REJECTED - ref_r)
    losses, _ = PREFERENCE_LOSSES.get("dpo")(chosen_logps=CHOSEN, rejected_logps=REJECTED, ref_chosen_logps=ref_c,
                                             ref_rejected_logps=ref_r, beta=0.1, label_smoothing=0.2)
    torch.testing.assert_close(losses, trl_losses, rtol=1e-12, atol=1e-14)


def test_orpo_odds_ratio_term_matches_trl():
    # TRL computes this term in float32 (it casts), so compare in float32
    chosen, rejected, c_len, r_len = (x.float() for x in (CHOSEN, REJECTED, C_LEN, R_LEN))
    trl_terms, _, _, _, trl_log_odds = ORPOTrainer.odds_ratio_loss(
        SimpleNamespace(beta=0.25, accelerator=_identity_accelerator), chosen / c_len, rejected / r_len)
    losses, metrics = PREFERENCE_LOSSES.get("orpo")(chosen_logps=chosen, rejected_logps=rejected,
                                                    chosen_lengths=c_len, rejected_lengths=r_len, beta=0.25)
    # TRL returns beta * log sigmoid(log_odds) and its trainer subtracts it from the SFT NLL
    torch.testing.assert_close(losses, -chosen / c_len - trl_terms, rtol=1e-6, atol=1e-7)
    assert metrics["log_odds"].item() == pytest.approx(trl_log_odds.item(), rel=1e-6)


# --- KTO (KTOTrainer._compute_loss) ---------------------------------------------------------------
def _trl_kto_loss(token_logp, labels, ref_logps, ref_kl_logps, kl_logps, beta, weights):
    B = token_logp.shape[0]
    zeros = torch.zeros(B, L - 1)
    outputs = SimpleNamespace(log_probs=token_logp, entropy=zeros, mean_logits=zeros)
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=_identity_accelerator, aux_loss_enabled=False,
        precompute_ref_logps=True, calculate_KL=True, loss_type="kto", beta=beta,
        desirable_weight=weights[0], undesirable_weight=weights[1], _compute_kl_logps=lambda model, batch: kl_logps,
        _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    ones = torch.ones(B, L, dtype=torch.long)
    inputs = {"input_ids": ones, "attention_mask": ones, "completion_mask": COMP, "label": labels,
              "ref_logps": ref_logps, "ref_KL_logps": ref_kl_logps}
    return KTOTrainer._compute_loss(stub, lambda **kw: outputs, inputs, return_outputs=False), stub._metrics["train"]


@pytest.mark.parametrize("kl_shift, weights", [(3.0, (1.0, 1.0)), (-3.0, (1.0, 1.33))])  # z0 > 0; z0 clamped to 0
def test_kto_matches_trl(kl_shift, weights):
    labels = torch.tensor([True, False, True, True, False, False])  # unpaired: 3 desirable, 3 undesirable
    kl_logps = TOKEN_LOGP.sum(-1).roll(1) + kl_shift / 2  # the mismatched (prompt, other response) sums
    ref_kl_logps = REF_LOGPS.roll(1) - kl_shift / 2
    token_trl = TOKEN_LOGP.clone().requires_grad_(True)
    trl_loss, trl_metrics = _trl_kto_loss(token_trl, labels, REF_LOGPS, ref_kl_logps, kl_logps, 0.3, weights)
    trl_loss.backward()

    token = TOKEN_LOGP.clone().requires_grad_(True)
    losses, metrics = UNPAIRED_LOSSES.get("kto")(
        policy_logps=token.sum(-1), ref_logps=REF_LOGPS, desirable=labels, kl_policy_logps=kl_logps,
        kl_ref_logps=ref_kl_logps, beta=0.3, desirable_weight=weights[0], undesirable_weight=weights[1])
    losses.mean().backward()

    torch.testing.assert_close(losses.mean(), trl_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(token.grad, token_trl.grad, rtol=1e-12, atol=1e-14)
    assert metrics["kl"].item() == pytest.approx(trl_metrics["kl"][0], rel=1e-12, abs=1e-14)
    assert (metrics["kl"].item() > 0) == (kl_shift > 0)
    for key in ("rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert metrics[key].item() == pytest.approx(trl_metrics[key][0], rel=1e-12, abs=1e-14)
