"""docs/integration.md works as written: its python blocks run in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

from esl_build.scaffold import scaffold

DOC = Path(__file__).resolve().parents[2] / "docs" / "integration.md"


def test_every_python_block_of_the_integration_guide_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 8
    scaffold(tmp_path / "my-lessons")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
