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


def test_readme_quick_start_has_the_main_job_and_the_tests():
    text = README.read_text()
    assert text.count("<!-- test-command -->") == 1 and text.count("<!-- main-command -->") == 1
    main = re.search(r"<!-- main-command -->\n```bash\n(.*)\n```", text).group(1)
    assert main.endswith("experiments/gradient_flow.py"), main
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
