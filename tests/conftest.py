from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from racefree.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "tests" / "specs"
EXAMPLES = ROOT / "spec" / "examples"


def normalise(text: str) -> str:
    """Transcripts without timings or column padding, so goldens are stable across machines."""
    text = re.sub(r"\b\d+\.\d\d\b", "#.##", text)
    return "\n".join(re.sub(r"  +", "  ", line).rstrip() for line in text.splitlines()) + "\n"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    def run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.chdir(ROOT)
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def jsonl(out: str, diagnostics: bool = False) -> list[dict]:
    """``racefree check --json`` output, one JSON object per line: the properties (and the diagnostics)."""
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in rows if diagnostics or r["kind"] != "diagnostic"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (the order is otherwise kept): pytest-xdist hands tests out in this
    order, and a long test handed out last runs alone while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
