"""Every third-party action in our workflows, and in the one `esl-build init` writes, is pinned
by commit, so a moved tag can never change what runs with the repository's secrets."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml")) + sorted(
    (ROOT / "esl_build" / "scaffold" / "github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*-?\s*uses:\s*(\S+)", re.MULTILINE)


def test_every_action_is_pinned_by_commit():
    assert WORKFLOWS
    found = [(path.name, ref) for path in WORKFLOWS for ref in USES.findall(path.read_text())]
    assert found
    loose = [(name, ref) for name, ref in found if not re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}",
                                                                    ref)]
    assert loose == []
