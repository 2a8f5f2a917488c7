import math

import pytest
import torch

from rl_reason.algorithms import (
    IGNORE_INDEX,
    STEP_AGGREGATIONS,
    aggregate_loss,
    distill_advantages,
    distill_loss,
    mix_process_outcome,
    prm_loss,
    step_probabilities,
)

X = IGNORE_INDEX


def test_prm_loss_counts_step_ends_only():
    # Two labelled positions: logits (0, ln 3) label 1 -> p = 3/4; logits (0, 0) label 0 -> p = 1/2.
    logits = torch.zeros(1, 4, 2)
    logits[0, 1, 1] = math.log(3.0)
    logits[0, 0] = torch.tensor([100.0, -100.0])  # unlabelled: any value must leave the loss alone
    labels = torch.tensor([[X, 1, X, 0]])
    loss, m = prm_loss(logits, labels)
    expected = -(math.log(0.75) + math.log(0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # argmax at the second step end is a tie -> class 0 = its label; the first step is right too
    assert m["step_accuracy"].item() == 1.0 and m["steps"].item() == 2 and m["positive_share"].item() == 0.5
    logits.requires_grad_(True)
    prm_loss(logits, labels)[0].backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0


def test_prm_loss_without_labels_is_zero_not_nan():
    logits = torch.randn(2, 3, 2, requires_grad=True)
    loss, m = prm_loss(logits, torch.full((2, 3), X))
    assert loss.item() == 0.0 and math.isnan(m["step_accuracy"].item())
    loss.backward()
    with pytest.raises(ValueError, match="logits must be"):
        prm_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))


def test_step_probabilities_pack_each_rows_steps_left():
    logits = torch.zeros(2, 4, 2)
    logits[0, 1, 1] = math.log(3.0)  # p = 0.75
    logits[0, 3, 0] = math.log(3.0)  # p = 0.25
    logits[1, 2, 1] = math.log(4.0)  # p = 0.8
    ends = torch.tensor([[False, True, False, True], [False, False, True, False]])
    scores, mask = step_probabilities(logits, ends)
    torch.testing.assert_close(scores, torch.tensor([[0.75, 0.25], [0.8, 0.0]]))
    assert mask.tolist() == [[True, True], [True, False]]


def test_step_aggregations_by_hand():
    s = torch.tensor([[0.9, 0.2, 0.7], [0.6, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    agg = {name: STEP_AGGREGATIONS.get(name)(step_scores=s, step_mask=m) for name in ("min", "last", "mean")}
    torch.testing.assert_close(agg["min"], torch.tensor([0.2, 0.6, 0.0]))
    torch.testing.assert_close(agg["last"], torch.tensor([0.7, 0.6, 0.0]))
    torch.testing.assert_close(agg["mean"], torch.tensor([0.6, 0.6, 0.0]))
    assert STEP_AGGREGATIONS.names() == ["last", "mean", "min"]
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        STEP_AGGREGATIONS.get("min")(step_scores=s, step_mask=m[:, :2])


def test_mix_process_outcome_keeps_right_above_wrong_below_half():
    outcome = torch.tensor([1.0, 0.0, 1.0])
    process = torch.tensor([0.5, 1.0, 0.0])
    torch.testing.assert_close(mix_process_outcome(outcome, process, 0.25), torch.tensor([0.875, 0.25, 0.75]))
    torch.testing.assert_close(mix_process_outcome(outcome, process, 0.0), outcome)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mix_process_outcome(outcome, process, 1.5)


def test_distill_advantage_is_negative_reverse_kl_sample():
    student = torch.log(torch.tensor([[0.5, 0.25, 0.9]]))
    teacher = torch.log(torch.tensor([[0.25, 0.25, 0.1]]))
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv = distill_advantages(student, teacher, mask, coef=2.0)
    torch.testing.assert_close(adv, torch.tensor([[-2 * math.log(2.0), 0.0, 0.0]]))


def test_distill_loss_is_zero_when_teacher_is_student():
    logp = torch.log_softmax(torch.randn(3, 5, 7), -1)[..., 0].clone().requires_grad_(True)
    mask = (torch.rand(3, 5) > 0.3).float()
    loss_mat = distill_loss(logp, logp.detach(), mask)
    loss = aggregate_loss(loss_mat, mask, "token-mean")
    assert loss.item() == 0.0
    loss.backward()
    assert logp.grad.abs().sum() == 0


def test_distill_loss_gradient_descends_reverse_kl():
    # One categorical "token" distribution: the expected score-function gradient of the loss
    # over the student's own samples equals the gradient of KL(student || teacher).
    theta = torch.tensor([0.3, -0.2, 0.5], requires_grad=True)
    teacher = torch.log_softmax(torch.tensor([1.0, 0.0, -1.0]), -1)
    student = torch.log_softmax(theta, -1)
    probs = student.exp().detach()
    # Exact expectation: sum_y p(y) * loss(y)
    expected = sum(probs[y] * distill_loss(student[y].view(1, 1), teacher[y].view(1, 1), torch.ones(1, 1)).sum()
                   for y in range(3))
    grad = torch.autograd.grad(expected, theta)[0]
    fresh = torch.log_softmax(theta, -1)
    kl = (fresh.exp() * (fresh - teacher)).sum()
    kl_grad = torch.autograd.grad(kl, theta)[0]
    torch.testing.assert_close(grad, kl_grad)
