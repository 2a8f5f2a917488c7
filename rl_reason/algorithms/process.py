"""Process reward models (PRMs) and on-policy distillation, as pure tensor functions.

    loss, metrics = prm_loss(logits, labels)                        # (B, T, 2), (B, T) -> scalar
    scores = step_probabilities(logits, labels != IGNORE_INDEX)     # (B, T, 2) -> (B, S), (B, S) mask
    seq = STEP_AGGREGATIONS.get("min")(step_scores=s, step_mask=m)  # (B, S) -> (B,)
    reward = mix_process_outcome(outcome, seq, weight=0.5)          # (B,)
    adv = distill_advantages(student_logp, teacher_logp, mask)      # (B, R) per-token advantages

A PRM is a token classifier on a causal LM: the solution's steps are joined by a separator token
and only each step's last token (the separator) carries a label, 1 = the step is still on a path
to a correct answer, 0 = not (TRL's PRMTrainer layout). Everywhere else the label is
``IGNORE_INDEX`` and takes no part in the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rl_reason.algorithms.registry import Registry

IGNORE_INDEX = -100
STEP_AGGREGATIONS = Registry("step-score aggregation")


def prm_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy on the step-end positions only.

    logits (B, T, 2) from the token-classification head, labels (B, T) long: 0 / 1 at each step's
    last token, ``IGNORE_INDEX`` elsewhere. The loss is the mean over labelled positions of
    ``-log softmax(logits)[label]`` (a batch with none gives 0 with a gradient, not NaN). Metrics
    (detached): step_accuracy (argmax = label), steps (count), positive_share.
    """
    if logits.dim() != 3 or logits.shape[:2] != labels.shape:
        raise ValueError(f"logits must be (B, T, C) and labels (B, T), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    mask = labels != IGNORE_INDEX
    n = mask.sum()
    flat = logits[mask].float()  # (N, C)
    target = labels[mask].long()
    if int(n) == 0:
        loss = logits.sum() * 0.0
    else:
        loss = F.cross_entropy(flat, target)
    with torch.no_grad():
        if int(n):
            acc = (flat.argmax(-1) == target).float().mean()
            pos = (target == 1).float().mean()
        else:
            acc = pos = torch.full((), float("nan"))
        metrics = {"step_accuracy": acc, "steps": n.float(), "positive_share": pos}
    return loss, metrics


def step_probabilities(logits: torch.Tensor, step_end: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P(step is good) at each step end, packed left: logits (B, T, 2), step_end (B, T) bool ->
    (scores (B, S), mask (B, S) bool) with S = the most steps of any row; row b's i-th step end
    (in token order) lands in column i, columns past its step count are masked out (score 0)."""
    probs = logits.float().softmax(-1)[..., 1]  # (B, T)
    counts = step_end.sum(-1)
    S = max(int(counts.max()) if counts.numel() else 0, 1)
    scores = torch.zeros(logits.shape[0], S, dtype=probs.dtype, device=probs.device)
    mask = torch.arange(S, device=probs.device)[None, :] < counts[:, None]
    scores[mask] = probs[step_end]  # row-major order keeps each row's steps in token order
    return scores, mask


def _check_steps(step_scores: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    if step_scores.dim() != 2 or step_scores.shape != step_mask.shape:
        raise ValueError(f"step_scores and step_mask must both be (B, S), got {tuple(step_scores.shape)} and "
                         f"{tuple(step_mask.shape)}")
    return step_mask.to(torch.bool)


@STEP_AGGREGATIONS.register("min")
def aggregate_min(*, step_scores: torch.Tensor, step_mask: torch.Tensor, empty: float = 0.0) -> torch.Tensor:
    """The weakest step: a solution is only as good as its worst step (Lightman et al. 2023 use the
    product; min is the common robust variant). (B, S), (B, S) -> (B,); a row without steps gets ``empty``."""
    mask = _check_steps(step_scores, step_mask)
    out = step_scores.masked_fill(~mask, float("inf")).min(-1).values
    return torch.where(mask.any(-1), out, torch.full_like(out, empty))


@STEP_AGGREGATIONS.register("last")
def aggregate_last(*, step_scores: torch.Tensor, step_mask: torch.Tensor, empty: float = 0.0) -> torch.Tensor:
    """The score of the final step (the PRM's estimate that the whole solution is right).
    (B, S), (B, S) -> (B,); steps are packed left, so the last is at column count - 1."""
    mask = _check_steps(step_scores, step_mask)
    counts = mask.sum(-1)
    last = step_scores.gather(-1, (counts - 1).clamp(min=0)[:, None]).squeeze(-1)
    return torch.where(counts > 0, last, torch.full_like(last, empty))


@STEP_AGGREGATIONS.register("mean")
def aggregate_mean(*, step_scores: torch.Tensor, step_mask: torch.Tensor, empty: float = 0.0) -> torch.Tensor:
    """The mean step score. (B, S), (B, S) -> (B,); a row without steps gets ``empty``."""
    mask = _check_steps(step_scores, step_mask)
    counts = mask.sum(-1)
    out = (step_scores * mask).sum(-1) / counts.clamp(min=1)
    return torch.where(counts > 0, out, torch.full_like(out, empty))


def mix_process_outcome(outcome: torch.Tensor, process: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 - weight) * outcome + weight * process`` per response, (B,), (B,) -> (B,).

    A convex mix keeps the reward on the verifier's 0..1 scale; weight 0 is the verifier alone,
    1 the PRM alone. With weight < 0.5 a wrong answer (outcome 0, process <= 1) can never outscore
    a right one (outcome 1, process >= 0).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if outcome.shape != process.shape:
        raise ValueError(f"outcome and process must share one (B,) shape, got {tuple(outcome.shape)} and {tuple(process.shape)}")
    return (1.0 - weight) * outcome.float() + weight * process.float()


def distill_advantages(student_logp: torch.Tensor, teacher_logp: torch.Tensor, response_mask: torch.Tensor,
                       coef: float = 1.0) -> torch.Tensor:
    """On-policy distillation's per-token advantage: the negative reverse-KL sample estimate.

        A_t = -coef * (log pi_student(y_t) - log pi_teacher(y_t))      on the student's own tokens y_t
    student_logp, teacher_logp, response_mask (B, R) -> (B, R), 0 outside the mask, no gradient.
    Its expectation under the student is -coef * KL(student || teacher) per token, so a policy
    gradient with these advantages descends the reverse KL (mode-seeking: the student is pushed
    off tokens the teacher finds unlikely). Zero when teacher = student. (Agarwal et al. 2024,
    GKD, https://arxiv.org/abs/2306.13649; Thinking Machines' "On-Policy Distillation", 2025.)
    """
    if student_logp.shape != teacher_logp.shape or student_logp.shape != response_mask.shape:
        raise ValueError(f"student_logp, teacher_logp and response_mask must share one (B, R) shape, got "
                         f"{tuple(student_logp.shape)}, {tuple(teacher_logp.shape)}, {tuple(response_mask.shape)}")
    return (-coef * (student_logp - teacher_logp) * response_mask).detach()


def distill_loss(logp: torch.Tensor, teacher_logp: torch.Tensor, response_mask: torch.Tensor,
                 coef: float = 1.0) -> torch.Tensor:
    """Per-token on-policy distillation loss (B, R): ``-A_t * logp_t`` with ``A_t`` from
    ``distill_advantages`` (detached, computed at ``logp``). Its gradient is
    ``coef * (logp - teacher_logp) * grad logp``, the score-function gradient of the reverse KL;
    the loss and its gradient are 0 where teacher = student. Reduce with ``aggregate_loss``."""
    adv = distill_advantages(logp.detach(), teacher_logp, response_mask, coef)
    return -adv * logp * response_mask
