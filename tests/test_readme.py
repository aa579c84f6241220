"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102


def test_readme_names_one_test_command_that_ci_runs():
    text = README.read_text()
    assert text.count("<!-- test-command -->") == 1
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
