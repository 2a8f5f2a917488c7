"""Throughput and accuracy of ``verify_math`` against plain math-verify, in the same run.

The labelled set is built from MATH-500 (``../shared/data/math500.jsonl``): each problem's
reference solution is the reasoning text, ending in one of the answer styles models write:
committed ones (boxed, "The final answer is", Minerva, "Answer:", bold, GSM8K ``####``, a
``<think>`` block with an abandoned box) and uncommitted ones (the answer as the last math of
the final sentence, as its last number, a Chinese or French answer phrase, a chat-template leak
after the answer that states another value), stating either an equivalent spelling of the gold
(label: correct) or a changed one (label: wrong), plus responses with no answer and hedged ones
(label: wrong), plus hostile answers (power towers, ``10^{10^{10^{10}}} - 10^{10^{10^{10}}} + g``,
huge factorials, 65k-character answers, 300 boxes, deep nesting; labelled by their value).
Labels hold by construction: the set is ours, so its accuracy figures say only that the
verifier reads these styles (``external_math_suites.py`` holds the externally labelled ones).

Peer: ``math_verify.verify(parse("\\boxed{gold}"), parse(response))`` with its default
(signal-based) timeouts, on the main thread; batched as a 2-process ``ProcessPoolExecutor``
(what verl does). Run: ``python3 benchmarks/verifier_speed.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rl_reason.verifiers import MathVerifier  # noqa: E402
from rl_reason.verifiers.extract import find_boxes  # noqa: E402

DATA_DIR = Path(os.environ.get("RL_REASON_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
STYLES = ["boxed", "final_is", "minerva", "answer_colon", "bold", "think", "final_math", "last_number", "chinese", "french", "leak", "gsm8k"]
# Styles whose answer must be a plain number to be read as one.
NUMERIC_STYLES = ("gsm8k", "last_number")


def _strip_boxes(text: str) -> str:
    out, last = [], 0
    for start, end, content in find_boxes(text):
        out += [text[last:start], content]
        last = end
    return "".join(out + [text[last:]])


def right_variant(gold: str, rng: random.Random) -> str:
    """An equivalent spelling of ``gold``."""
    if re.fullmatch(r"\d+", gold):
        n = int(gold)
        return rng.choice([f"{n:,}".replace(",", "{,}") if n >= 1000 else gold, f"x = {n}", f"{n}.0", gold])
    m = re.fullmatch(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        choices = [f"\\dfrac{{{a}}}{{{b}}}", f"\\frac{{{2 * a}}}{{{2 * b}}}", f"{a}/{b}"]
        f = Fraction(a, b)
        if all(p in (2, 5) for p in _prime_factors(f.denominator)):
            choices.append(str(float(f)))
        return rng.choice(choices)
    m = re.fullmatch(r"(\d+)\^\\circ", gold)
    if m:
        return m.group(1)
    return rng.choice([gold, gold.replace("\\frac", "\\dfrac"), f"\\left({gold}\\right)" if "," not in gold else gold])


def _prime_factors(n: int) -> set[int]:
    out, p = set(), 2
    while p * p <= n:
        while n % p == 0:
            out.add(p)
            n //= p
        p += 1
    if n > 1:
        out.add(n)
    return out


def wrong_variant(gold: str, rng: random.Random) -> str:
    """A spelling of a different value: a perturbed number, or a rounded approximation."""
    m = re.fullmatch(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
    if m and Fraction(int(m.group(1)), int(m.group(2))).denominator % 3 == 0:
        return f"{int(m.group(1)) / int(m.group(2)):.3f}"  # 1/3 -> 0.333: an approximation
    digits = list(re.finditer(r"\d", gold))
    if not digits:
        return gold + "+1"
    d = rng.choice(digits)
    return gold[: d.start()] + str((int(d.group()) + rng.randint(1, 8)) % 10) + gold[d.end() :]


# Endings per style: {body} is the reasoning (boxes stripped), {plain} the reasoning with its
# answer phrases also reworded (for styles that must not commit), {num} the answer as prose writes it.
ENDINGS = {
    "boxed": "{body}\n\nTherefore, the answer is $\\boxed{{{answer}}}$.",
    "final_is": "{body}\n\nThe final answer is ${answer}$.",
    "minerva": "{body}\n\nFinal Answer: The final answer is ${answer}$. I hope it is correct.",
    "answer_colon": "{body}\n\nAnswer: ${answer}$",
    "bold": "{body}\n\n**${answer}$**",
    "think": "<think>\n{body}\nSo maybe $\\boxed{{{decoy}}}$? Let me double-check.\n</think>\nThe answer is $\\boxed{{{answer}}}$.",
    "final_math": "{plain}\n\nPutting everything together, we get ${answer}$.",
    "last_number": "{plain}\n\nSo the count we want comes to {num} in total.",
    "chinese": "{body}\n\n所以答案是 ${answer}$。",
    "french": "{body}\n\nDonc la réponse est ${answer}$.",
    "leak": "{body}\n\nThe answer is $\\boxed{{{answer}}}$.<|im_end|>\n<|im_start|>user\nAnd what about $\\boxed{{{decoy}}}$?",
    "gsm8k": "{body}\n#### {answer}",
}


def respond(solution: str, answer: str, style: str, decoy: str) -> str:
    body = _strip_boxes(solution).rstrip()
    num = answer.replace("{,}", ",").removeprefix("x = ")
    plain = _strip_answer_phrases(body) if style in ("final_math", "last_number") else body
    return ENDINGS[style].format(body=body, plain=plain, answer=answer, decoy=decoy, num=num)


def _strip_answer_phrases(text: str) -> str:
    return re.sub(r"(?i)\b(?:answer|result)\b", "value", _strip_boxes(text))


def hostile_pairs(rows: list[dict]) -> list[tuple[str, str, bool, str]]:
    """The hostile classes, each against a real gold; labelled by the value they denote."""
    out = []
    for row in [r for r in rows if re.fullmatch(r"\d+", r["answer"])][:2]:
        gold = row["answer"]
        out += [
            ("So the answer is $\\boxed{9^{9^{9^{9}}}}$.", gold, False, "hostile"),
            (f"The answer is $\\boxed{{10^{{10^{{10^{{10}}}}}} - 10^{{10^{{10^{{10}}}}}} + {gold}}}$.", gold, True, "hostile"),
            ("The answer is $\\boxed{2^{2^{2^{2^{2^{2}}}}}-1}$.", gold, False, "hostile"),
            ("The answer is $\\boxed{(10^{6})!}$.", gold, False, "hostile"),
            ("The answer is $\\boxed{" + "1+" * 32000 + "1}$.", gold, False, "hostile"),
            (" ".join(f"$\\boxed{{{i}}}$" for i in range(300)), gold, False, "hostile"),
            ("The answer is $\\boxed{" + "(" * 300 + gold + ")" * 300 + "}$.", gold, True, "hostile"),
            ("The answer is $\\boxed{" + "\\frac{1}{" * 61 + gold + "}" * 61 + "}$.", gold, False, "hostile"),
        ]
    return out


def build_pairs(limit: int | None) -> list[tuple[str, str, bool, str]]:
    """(response, gold, label, kind) for the labelled set."""
    rng = random.Random(0)
    rows = [json.loads(line) for line in open(DATA_DIR / "math500.jsonl")][:limit]
    pairs = []
    for i, row in enumerate(rows):
        gold, solution = row["answer"], row["solution"]
        numeric = bool(re.fullmatch(r"-?\d+", gold))
        styles = [s for s in STYLES if s not in NUMERIC_STYLES or numeric]
        right, wrong = right_variant(gold, rng), wrong_variant(gold, rng)
        pairs.append((respond(solution, right, styles[i % len(styles)], wrong), gold, True, "right"))
        pairs.append((respond(solution, wrong, styles[(i + 3) % len(styles)], right), gold, False, "wrong"))
        cut = _strip_answer_phrases(solution)[: len(solution) * 2 // 5]
        if i % 5 == 0 and gold not in cut:  # a generation cut off before it states an answer
            pairs.append((cut, gold, False, "no_answer"))
        if i % 5 == 1:
            pairs.append((_strip_boxes(solution) + f"\n\nSo $\\boxed{{{wrong}}}$ or $\\boxed{{{gold}}}$.", gold, False, "hedge"))
    return pairs + hostile_pairs(rows)


# -- plain math-verify, the peer --------------------------------------------------------
def plain_math_verify(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    return verify(parse("\\boxed{" + gold + "}"), parse(response))


def _plain_chunk(chunk):
    logging.disable(logging.WARNING)
    return [plain_math_verify(r, g) for r, g in chunk]


def timed_calls(fn, pairs) -> tuple[list, list[float]]:
    """``fn(response, gold)`` per pair, in order, and each call's wall-clock seconds."""
    out, lat = [], []
    for r, g, _, _ in pairs:
        t = time.perf_counter()
        out.append(fn(r, g))
        lat.append(time.perf_counter() - t)
    return out, lat


def accuracy(preds: list[bool], pairs) -> float:
    return sum(p == label for p, (_, _, label, _) in zip(preds, pairs)) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N MATH-500 problems")
    ap.add_argument("--workers", type=int, default=2, help="workers for the batched runs (default: %(default)s)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    import math_verify  # noqa: F401 - import cost is not throughput

    pairs = build_pairs(args.limit)
    n = len(pairs)
    print(f"{n} labelled pairs ({sum(p[2] for p in pairs)} correct by construction) from {DATA_DIR / 'math500.jsonl'}")
    rows = []

    plain, plain_lat = timed_calls(plain_math_verify, pairs)
    plain_single = sum(plain_lat)
    rows.append(("math-verify, 1 process", plain_single, accuracy(plain, pairs)))

    chunks = [[(r, g) for r, g, _, _ in pairs[i : i + 25]] for i in range(0, n, 25)]
    with ProcessPoolExecutor(args.workers) as ex:
        list(ex.map(_plain_chunk, [[("$1$", "1")]] * args.workers))  # start the processes
        t = time.perf_counter()
        plain_batch = [x for chunk in ex.map(_plain_chunk, chunks) for x in chunk]
        plain_batched = time.perf_counter() - t
    rows.append((f"math-verify, {args.workers}-process pool", plain_batched, accuracy(plain_batch, pairs)))

    for cache_size, label in ((0, "no result cache"), (8192, "result cache")):
        with MathVerifier(workers=1, cache_size=cache_size) as v:
            v.verify("$\\boxed{\\sqrt{8}}$", "2\\sqrt{2}")  # start the worker (a pair the caller cannot decide)
            ours, ours_lat = timed_calls(v.verify, pairs)
            rows.append((f"verify_math, 1 worker, {label}", sum(ours_lat), accuracy([r.correct for r in ours], pairs)))
        with MathVerifier(workers=args.workers, cache_size=cache_size) as v:
            warm = range(2, 2 + args.workers)  # one symbolic pair per worker, all distinct
            v.verify_batch([f"$\\boxed{{\\sqrt{{{4 * k}}}}}$" for k in warm], [f"2\\sqrt{{{k}}}" for k in warm])
            t = time.perf_counter()
            ours_b = v.verify_batch([p[0] for p in pairs], [p[1] for p in pairs])
            rows.append((f"MathVerifier batch, {args.workers} workers, {label}", time.perf_counter() - t, accuracy([r.correct for r in ours_b], pairs)))

    print(f"\n{'verifier':52s} {'pairs/s':>9s} {'accuracy':>9s} {'x math-verify':>14s}")
    for name, secs, acc in rows:
        print(f"{name:52s} {n / secs:9.1f} {acc:9.4f} {plain_single / secs:13.1f}x")
    statuses = {}
    for r in ours:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    print(f"verify_math statuses: {statuses} ({statuses.get('timeout', 0)} pairs reached the timeout)")
    print(f"\nlatency per pair, single caller (ms):  {'p50':>8s} {'p99':>8s} {'max':>8s}")
    for name, lat in (("math-verify, 1 process", plain_lat), ("verify_math, 1 worker, result cache", ours_lat)):
        q = sorted(lat)
        print(f"  {name:36s} {1e3 * q[len(q) // 2]:8.2f} {1e3 * q[int(len(q) * 0.99)]:8.2f} {1e3 * q[-1]:8.1f}")
    calm = [i for i, p in enumerate(pairs) if p[3] != "hostile"]
    calm_plain, calm_ours = sum(plain_lat[i] for i in calm), sum(ours_lat[i] for i in calm)
    print(f"without the hostile pairs ({len(calm)}): math-verify {len(calm) / calm_plain:.1f} pairs/s, "
          f"verify_math {len(calm) / calm_ours:.1f} pairs/s ({calm_plain / calm_ours:.1f}x)")
    for kind in ("right", "wrong", "no_answer", "hedge", "hostile"):
        idx = [i for i, p in enumerate(pairs) if p[3] == kind]
        print(f"  {kind:10s} n={len(idx):4d}  verify_math acc {sum(ours[i].correct == pairs[i][2] for i in idx) / len(idx):.3f}"
              f"  math-verify acc {sum(plain[i] == pairs[i][2] for i in idx) / len(idx):.3f}")

    # Thread-call crash check: plain math-verify's SIGALRM timeout fails off the main thread.
    sample = pairs[:64]
    crashes = {"math-verify": 0, "verify_math": 0}

    def call(fn, r, g, key):
        try:
            fn(r, g)
        except Exception:  # noqa: BLE001 - counting crashes is the point
            crashes[key] += 1

    from rl_reason.verifiers import verify_math

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda p: call(plain_math_verify, p[0], p[1], "math-verify"), sample))
        list(ex.map(lambda p: call(verify_math, p[0], p[1], "verify_math"), sample))
    print(f"\ncalls from 4 threads ({len(sample)} pairs each): crashes {crashes}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")


if __name__ == "__main__":
    main()
