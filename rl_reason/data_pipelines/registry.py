"""Named datasets: where each lives (Hugging Face hub id and split, local JSONL file) and how
its rows map to the one ``Example`` schema.

``load_dataset("math500")`` reads ``<data dir>/math500.jsonl`` when the data directory has
it and otherwise the hub copy (``datasets.load_dataset``, imported only then). The data
directory is ``RL_REASON_DATA_DIR`` or, when it exists, ``../shared/data`` beside the repo
root. Any JSONL file works too, with a field mapping for its keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_reason.data_pipelines.arithmetic import make_arithmetic
from rl_reason.data_pipelines.code_tasks import make_code_tasks
from rl_reason.data_pipelines.schema import Example
from rl_reason.data_pipelines.tasks import make_tasks
from rl_reason.io import JsonlError, read_jsonl

DATA_DIR_ENV = "RL_REASON_DATA_DIR"
PROMPT_KEYS = ("prompt", "problem", "question")
# Generated sets (``arithmetic``, ``tasks:FAMILY``): problems drawn per split when no limit is given.
ARITHMETIC_DEFAULT_SIZE = {"train": 1000, "heldout": 200}


@dataclass(frozen=True)
class FieldMap:
    """Which source keys fill an Example.

    ``prompt`` None takes the first of ``PROMPT_KEYS`` the row has; ``id`` None numbers rows as ``<dataset>-<row index>``; ``answer`` names the gold-answer
    key of math rows; ``tests`` names a rule that builds the code verifier's tests from the
    row (``TEST_BUILDERS``). With only one of ``answer``/``tests`` set every row needs it; with
    both, each row needs at least one (a file mixing math and code rows). ``metadata`` maps
    Example metadata keys to source keys (absent or null source keys are left out); ``prepare`` rewrites a raw row first (e.g. taking
    the answer out of a solution).
    """

    prompt: str | None
    id: str | None = "id"
    answer: str | None = "answer"
    tests: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    hub_id: str
    hub_split: str
    local_file: str
    local_fields: FieldMap
    hub_fields: FieldMap
    hub_config: str | None = None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in ``text``, nested braces handled."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    depth, i = 1, starts[-1]
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[starts[-1] : i - 1] if depth == 0 else None


def _gsm8k_answer(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "answer": row["answer"].split("####")[-1].strip().replace(",", "")}


def _math_lighteval_answer(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "answer": last_boxed(row["solution"])}


def _join_answers(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "final_answer": ", ".join(row["final_answer"])}


def _mbpp_prompt(row: dict[str, Any]) -> dict[str, Any]:
    # The task text alone does not name the function the asserts call; the standard MBPP
    # prompt shows the tests (Austin et al. 2021).
    text = row.get("problem", row.get("text"))
    return {**row, "problem": f"{text}\nYour code should pass these tests:\n" + "\n".join(row["test_list"])}


def _humaneval_tests(row: dict[str, Any]) -> list[dict[str, Any]]:
    # The code verifier's harness calls `check(<entry_point>)` itself after running the test code.
    return [{"kind": "assert", "code": row["test"], "entry_point": row["entry_point"]}]


def _mbpp_tests(row: dict[str, Any]) -> list[dict[str, Any]]:
    setup = row.get("test_setup_code") or ""
    return [{"kind": "assert", "code": "\n".join([setup, *row["test_list"]]).strip() + "\n"}]


def _stdio_tests(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"kind": "stdio", "input": t["input"], "output": t["output"]} for t in row["tests"]]


def _code_contests_tests(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in ("public_tests", "private_tests", "generated_tests"):
        part = row.get(key) or {"input": [], "output": []}
        out += [{"kind": "stdio", "input": i, "output": o} for i, o in zip(part["input"], part["output"])]
    return out


def _tests_as_is(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    return row["tests"]


TEST_BUILDERS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "humaneval": _humaneval_tests,
    "mbpp": _mbpp_tests,
    "stdio": _stdio_tests,
    "code_contests": _code_contests_tests,
    "as_is": _tests_as_is,
}

_LEVEL_SUBJECT = {"level": "level", "subject": "subject"}
_CONTEST = {"year": "year", "contest": "contest"}

REGISTRY: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("math500", "HuggingFaceH4/MATH-500", "test", "math500.jsonl",
                    FieldMap("problem", metadata=_LEVEL_SUBJECT),
                    FieldMap("problem", id="unique_id", metadata=_LEVEL_SUBJECT)),
        DatasetSpec("aime24", "HuggingFaceH4/aime_2024", "train", "aime24.jsonl",
                    FieldMap("problem", metadata=_CONTEST), FieldMap("problem", metadata={"year": "year"})),
        DatasetSpec("aime25", "MathArena/aime_2025", "train", "aime25.jsonl",
                    FieldMap("problem", metadata=_CONTEST), FieldMap("problem", id=None)),
        DatasetSpec("amc23", "math-ai/amc23", "test", "amc23.jsonl",
                    FieldMap("problem", metadata=_CONTEST), FieldMap("question", id=None)),
        DatasetSpec("gsm8k", "openai/gsm8k", "test", "gsm8k_test.jsonl",
                    FieldMap("problem"), FieldMap("question", id=None, prepare=_gsm8k_answer), hub_config="main"),
        DatasetSpec("minerva_math", "math-ai/minervamath", "test", "minerva_math.jsonl",
                    FieldMap("problem", metadata={"subject": "subject"}), FieldMap("question", id=None)),
        DatasetSpec("olympiadbench", "Hothan/OlympiadBench", "train", "olympiadbench.jsonl",
                    FieldMap("problem", metadata={"subject": "subject", "answer_type": "answer_type"}),
                    FieldMap("question", answer="final_answer", metadata={"subject": "subject"}, prepare=_join_answers),
                    hub_config="OE_TO_maths_en_COMP"),
        DatasetSpec("math_train", "DigitalLearningGmbH/MATH-lighteval", "train", "math_train_sample.jsonl",
                    FieldMap("problem", metadata=_LEVEL_SUBJECT),
                    FieldMap("problem", id=None, metadata={"level": "level", "subject": "type"}, prepare=_math_lighteval_answer)),
        DatasetSpec("humaneval", "openai/openai_humaneval", "test", "humaneval.jsonl",
                    FieldMap("prompt", answer=None, tests="humaneval"),
                    FieldMap("prompt", id="task_id", answer=None, tests="humaneval")),
        DatasetSpec("mbpp", "google-research-datasets/mbpp", "test", "mbpp.jsonl",
                    FieldMap("problem", answer=None, tests="mbpp", prepare=_mbpp_prompt),
                    FieldMap("problem", id="task_id", answer=None, tests="mbpp", prepare=_mbpp_prompt), hub_config="full"),
        DatasetSpec("stdio", "deepmind/code_contests", "test", "stdio_problems.jsonl",
                    FieldMap("problem", answer=None, tests="stdio"),
                    FieldMap("description", id="name", answer=None, tests="code_contests")),
    ]
}

GENERATED = ("arithmetic", "code_tasks", "tasks")
DATASET_NAMES = (*REGISTRY, *GENERATED)


def is_data_file(name_or_path: str) -> bool:
    """Whether ``load_dataset`` reads ``name_or_path`` as a JSONL file (else a dataset name)."""
    return name_or_path.endswith(".jsonl") or os.sep in name_or_path


def default_data_dir() -> Path | None:
    """``$RL_REASON_DATA_DIR``, else ``../shared/data`` beside the repo root if it exists."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env)
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_DIR_ENV}={env} is not a directory")
        return path
    beside_repo = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return beside_repo if beside_repo.is_dir() else None


def _gold_answer(value: Any) -> str:
    # Hub copies store some answers as numbers (amc23: 27.0); whole floats become "27".
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"'answer' must be a string or number, got {type(value).__name__}")
    if isinstance(value, float):
        value = int(value) if value.is_integer() else value
    text = str(value).strip()
    if not text:
        raise ValueError("'answer' is empty")
    return text


def convert_row(row: dict[str, Any], fields: FieldMap, source: str, index: int, where: str) -> Example:
    """One raw row to an Example; raises ``ValueError`` prefixed with ``where`` on a bad row."""
    try:
        if fields.prepare:
            row = fields.prepare(row)
        prompt_key = fields.prompt or next((k for k in PROMPT_KEYS if k in row), PROMPT_KEYS[0])
        for key in (prompt_key, fields.id):
            if key is not None and row.get(key) is None:
                raise ValueError(f"missing {key!r}")
        prompt = row[prompt_key]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"{prompt_key!r} must be a non-empty string")
        ex_id = f"{source}-{index}" if fields.id is None else str(row[fields.id])
        answer = _gold_answer(row[fields.answer]) if fields.answer and row.get(fields.answer) is not None else None
        if fields.answer and answer is None and not fields.tests:
            raise ValueError(f"missing {fields.answer!r}")
        tests = None
        if fields.tests:
            try:
                tests = TEST_BUILDERS[fields.tests](row)
            except KeyError as e:
                if answer is None and fields.answer:
                    raise ValueError(f"needs {fields.answer!r} (math) or tests (code); missing key {e}") from None
                if answer is None:
                    raise
        if answer is None and tests is None:
            raise ValueError("row has neither an answer nor tests")
        if tests is not None and (
            not isinstance(tests, list) or not tests or not all(isinstance(t, dict) and "kind" in t for t in tests)
        ):
            raise ValueError("tests must be a non-empty list of dicts with a 'kind'")
        metadata = {k: row[src] for k, src in fields.metadata.items() if row.get(src) is not None}
        return Example(id=ex_id, prompt=prompt, answer=answer, tests=tests, source=source, metadata=metadata)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        detail = f"missing key {e}" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"{where}: {detail}") from None


def parse_field_map(spec: str | dict[str, str] | None) -> FieldMap:
    """A FieldMap for an arbitrary file from ``"prompt=question,answer=final,tests=as_is,
    meta.level=difficulty"`` (or the same as a dict). Unset keys default to the Example schema's
    own names (``id``; the prompt from ``PROMPT_KEYS``; with neither ``answer`` nor ``tests`` set,
    ``answer`` and ``tests=as_is``, so a file in the Example schema loads with math and code rows
    alike); ``id=`` (empty) numbers the rows."""
    pairs = dict(spec) if isinstance(spec, dict) else {}
    if isinstance(spec, str):
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if "=" not in part:
                raise ValueError(f"field mapping {part!r} is not KEY=SOURCE")
            key, src = (s.strip() for s in part.split("=", 1))
            pairs[key] = src
    metadata = {k[len("meta."):]: v for k, v in pairs.items() if k.startswith("meta.")}
    plain = {k: v for k, v in pairs.items() if not k.startswith("meta.")}
    unknown = set(plain) - {"id", "prompt", "answer", "tests"}
    if unknown:
        raise ValueError(f"unknown field mapping keys {sorted(unknown)}; use id, prompt, answer, tests or meta.<name>")
    tests = plain.get("tests", None if plain.get("answer") else "as_is") or None
    if tests is not None and tests not in TEST_BUILDERS:
        raise ValueError(f"tests={tests!r}: choose a rule from {sorted(TEST_BUILDERS)}")
    return FieldMap(
        prompt=plain.get("prompt"),
        id=plain.get("id", "id") or None,
        answer=plain.get("answer", None if plain.get("tests") else "answer") or None,
        tests=tests,
        metadata=metadata,
    )


def _iter_file(path: Path) -> Iterator[tuple[int, dict[str, Any] | JsonlError, str]]:
    for line_no, row in read_jsonl(path):
        yield line_no - 1, row, f"{path}:{line_no}"


def _iter_hub(spec: DatasetSpec, split: str) -> Iterator[tuple[int, dict[str, Any], str]]:
    import datasets

    ds = datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    for i, row in enumerate(ds):
        yield i, dict(row), f"{spec.hub_id}[{split}] row {i}"


def _convert_all(rows: Iterable, fields: FieldMap, source: str, limit: int | None, errors: list[str] | None) -> list[Example]:
    out: list[Example] = []
    for index, row, where in rows:
        if limit is not None and len(out) >= limit:
            break
        try:
            if isinstance(row, JsonlError):
                raise row
            out.append(convert_row(row, fields, source, index, where))
        except ValueError as e:
            if errors is None:
                raise
            errors.append(str(e))
    return out


def load_dataset(
    name_or_path: str,
    split: str | None = None,
    data_dir: str | os.PathLike | None = None,
    field_map: str | dict[str, str] | FieldMap | None = None,
    limit: int | None = None,
    errors: list[str] | None = None,
    seed: int = 0,
) -> list[Example]:
    """Examples of a registered dataset (``DATASET_NAMES``), a generated one
    (``arithmetic[:train|heldout]``, ``code_tasks[:train|heldout]``, ``tasks:FAMILY[:train|heldout]``
    from ``data_pipelines.tasks``, where ``FAMILY`` may be ``a+b`` or ``all``), or a JSONL file
    (``field_map`` maps its keys; see ``parse_field_map``).

    Bad rows (missing answer, wrong types, invalid JSON) raise a ``ValueError`` naming the
    file and line, or, when ``errors`` is a list, are appended to it and skipped.
    """
    if is_data_file(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no such data file: {path}")
        fields = field_map if isinstance(field_map, FieldMap) else parse_field_map(field_map)
        return _convert_all(_iter_file(path), fields, path.stem, limit, errors)

    name, _, name_split = name_or_path.partition(":")
    if name == "tasks":
        family, _, task_split = name_split.partition(":")
        if not family:
            raise ValueError(f"{name_or_path!r}: name a task family, e.g. tasks:word_problems:train or tasks:all:heldout")
        split = split or task_split or "train"
        return make_tasks(family, limit or ARITHMETIC_DEFAULT_SIZE.get(split, 0), split=split, seed=seed)
    split = split or name_split or None
    if name == "arithmetic":
        split = split or "train"
        return make_arithmetic(limit or ARITHMETIC_DEFAULT_SIZE.get(split, 0), split=split, seed=seed)
    if name == "code_tasks":
        return make_code_tasks(limit, split=split or "train", seed=seed)
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)} or give a .jsonl path")
    spec = REGISTRY[name]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    local = data_dir / spec.local_file if data_dir is not None else None
    if local is not None and local.is_file():
        if split not in (None, spec.hub_split):
            raise ValueError(f"the local copy {local} holds only the {spec.hub_split!r} split of {name}, not {split!r}")
        return _convert_all(_iter_file(local), spec.local_fields, name, limit, errors)
    return _convert_all(_iter_hub(spec, split or spec.hub_split), spec.hub_fields, name, limit, errors)
