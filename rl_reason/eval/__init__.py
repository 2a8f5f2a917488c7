"""Sampled evaluation: unbiased metrics, the one grader, resumable runs, offline grading.

Torch-free at import: the rollout engine is whatever the caller passes to ``evaluate``, so
``rl-reason grade`` works on a base install.
"""

from rl_reason.eval.grader import Grader, grade_records
from rl_reason.eval.harness import SAMPLES_FILE, evaluate, read_samples, write_report
from rl_reason.eval.metrics import avg_at_n, bootstrap_ci, maj_at_k, majority_answer, mean_with_ci, pass_at_k
from rl_reason.eval.summary import flat_metrics, summarize

__all__ = [
    "Grader",
    "SAMPLES_FILE",
    "avg_at_n",
    "bootstrap_ci",
    "evaluate",
    "flat_metrics",
    "grade_records",
    "maj_at_k",
    "majority_answer",
    "mean_with_ci",
    "pass_at_k",
    "read_samples",
    "summarize",
    "write_report",
]
