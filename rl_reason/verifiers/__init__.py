# TEMP LOCAL STUB - NOT COMMITTED
import re
from dataclasses import dataclass
@dataclass
class MathResult:
    correct: bool; score: float; status: str; extracted: str | None; reason: str = ""
class MathVerifier:
    def __init__(self, workers=1, timeout=5.0): pass
    def __enter__(self): return self
    def __exit__(self, *a): pass
    def verify_batch(self, rs, gs):
        out = []
        for r, g in zip(rs, gs):
            m = re.findall(r"\\boxed\{([^}]*)\}", r)
            if not m: out.append(MathResult(False, 0.0, "no_answer", None)); continue
            ok = m[-1].strip() == g.strip()
            out.append(MathResult(ok, float(ok), "correct" if ok else "wrong", m[-1]))
        return out
