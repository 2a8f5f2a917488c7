import pytest

from rl_reason.data_pipelines import Example, render_prompt
from rl_reason.data_pipelines.templates import default_template

MATH = Example("m", "What is 2 + 3?", answer="5")
HUMANEVAL = Example("h", "def add(a, b):\n    \"\"\"Add.\"\"\"\n", tests=[{"kind": "assert", "code": "check(add)", "entry_point": "add"}])
STDIO = Example("s", "Read n and print n squared.", tests=[{"kind": "stdio", "input": "3\n", "output": "9\n"}])


class ChatTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages) + "<|assistant|>"


def test_boxed_templates_show_the_answer_format_with_an_example():
    base = render_prompt(MATH, "base_boxed")
    assert "\\boxed{}" in base and "\\boxed{42}" in base
    assert base.endswith("What is 2 + 3?\n\nSolution:")
    chat = render_prompt(MATH, "chat_boxed", ChatTokenizer())
    assert chat.startswith("<|user|>Solve") and "\\boxed{42}" in chat and chat.endswith("What is 2 + 3?<|end|><|assistant|>")


def test_system_template_puts_the_format_in_the_system_turn():
    chat = render_prompt(MATH, "chat_boxed_system", ChatTokenizer())
    system, user = chat.split("<|end|>")[:2]
    assert system.startswith("<|system|>") and "\\boxed{42}" in system and "three short sentences" in system
    assert user == "<|user|>What is 2 + 3?"


def test_code_templates():
    he = render_prompt(HUMANEVAL, "chat_code", ChatTokenizer())
    assert "`add`" in he and "```python\ndef add(a, b):" in he
    io = render_prompt(STDIO, "base_code")
    assert "standard input" in io and io.endswith("Answer:\n")


def test_template_selection_and_errors():
    assert default_template(MATH) == "base_boxed"
    assert default_template(STDIO, ChatTokenizer()) == "chat_code"
    assert render_prompt(MATH, "auto", ChatTokenizer()) == render_prompt(MATH, "chat_boxed", ChatTokenizer())
    with pytest.raises(ValueError, match="unknown template 'boxed'"):
        render_prompt(MATH, "boxed")
    with pytest.raises(ValueError, match="need a tokenizer with a chat template"):
        render_prompt(MATH, "chat_boxed")
