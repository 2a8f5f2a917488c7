"""Prompt templates: a bare problem (``Example.prompt``) to the text a model is given.

The math instruction shows the ``\\boxed{}`` format with a one-line example: small instruct
models (SmolLM2-135M) almost never write ``\\boxed`` when only told to, and the verifier
reads the last boxed answer first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rl_reason.data_pipelines.schema import Example

MATH_INSTRUCTION = (
    "Solve the following problem step by step. Put the final answer in \\boxed{}, "
    "like this: The final answer is $\\boxed{42}$."
)

# A system prompt for small chat models: the answer format, and brevity, so that an answer is
# committed before the generation budget runs out.
MATH_SYSTEM = (
    "You solve math problems. Think in at most three short sentences, then give the final answer "
    "in \\boxed{}, like this: The final answer is $\\boxed{42}$."
)

STDIO_INSTRUCTION = (
    "Write a complete Python 3 program that reads from standard input and writes to standard "
    "output. Put the program in one ```python code block."
)

FUNCTION_INSTRUCTION = "Write a Python function that solves the task. Put the code in one ```python code block."


def _math_text(example: Example) -> str:
    return f"{MATH_INSTRUCTION}\n\n{example.prompt}"


def _code_text(example: Example) -> str:
    tests = example.tests or []
    if tests and all(t.get("kind") == "stdio" for t in tests):
        return f"{STDIO_INSTRUCTION}\n\n{example.prompt}"
    entry_point = next((t.get("entry_point") for t in tests if t.get("entry_point")), None)
    if entry_point:  # HumanEval style: the prompt is a signature and docstring to complete
        return (
            f"Complete the following Python function `{entry_point}`. Reply with the whole function "
            f"and its imports in one ```python code block.\n\n```python\n{example.prompt}```"
        )
    return f"{FUNCTION_INSTRUCTION}\n\n{example.prompt}"


def _chat(text: str, tokenizer: Any, system: str | None = None) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat templates need a tokenizer with a chat template; use a base_* template otherwise")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def user_message(example: Example) -> str:
    """The instruction and problem as one user turn (what chat templates wrap; DPO pairs carry it)."""
    return _code_text(example) if example.task == "code" else _math_text(example)


def _chat_boxed(example: Example, tokenizer: Any) -> str:
    return _chat(_math_text(example), tokenizer)


def _chat_boxed_system(example: Example, tokenizer: Any) -> str:
    return _chat(example.prompt, tokenizer, system=MATH_SYSTEM)


def _base_boxed(example: Example, tokenizer: Any) -> str:
    return f"{_math_text(example)}\n\nSolution:"


def _chat_code(example: Example, tokenizer: Any) -> str:
    return _chat(_code_text(example), tokenizer)


def _base_code(example: Example, tokenizer: Any) -> str:
    return f"{_code_text(example)}\n\nAnswer:\n"


TEMPLATES: dict[str, Callable[[Example, Any], str]] = {
    "chat_boxed": _chat_boxed,
    "chat_boxed_system": _chat_boxed_system,
    "base_boxed": _base_boxed,
    "chat_code": _chat_code,
    "base_code": _base_code,
}


def render_prompt(example: Example, template: str, tokenizer: Any = None) -> str:
    """The model input for ``example`` under the named template.

    ``chat_boxed`` / ``chat_code`` wrap the instruction and problem in the tokenizer's chat
    template (with the generation prompt); ``chat_boxed_system`` puts a short answer-format
    instruction (``MATH_SYSTEM``) in the system turn and the bare problem in the user turn; ``base_boxed`` / ``base_code`` are plain text for
    base models. ``auto`` picks chat or base by whether the tokenizer has a chat template,
    and boxed or code by the example's task.
    """
    if template == "auto":
        template = default_template(example, tokenizer)
    try:
        fn = TEMPLATES[template]
    except KeyError:
        raise ValueError(f"unknown template {template!r}; choose from {sorted(TEMPLATES)} or 'auto'") from None
    return fn(example, tokenizer)


def default_template(example: Example, tokenizer: Any = None) -> str:
    style = "chat" if tokenizer is not None and getattr(tokenizer, "chat_template", None) else "base"
    return f"{style}_{'code' if example.task == 'code' else 'boxed'}"
