"""Golden transcripts for tests/specs/{ok,static_error,counterexample}.

Regenerate after an intended change with: RACEFREE_UPDATE_GOLDEN=1 pytest tests/test_golden.py
(then read the diff before committing it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import ROOT, SPECS, normalise

UPDATE = os.environ.get("RACEFREE_UPDATE_GOLDEN") == "1"


def _cases(group: str) -> list[Path]:
    return sorted((SPECS / group).glob("*.rf"))


def _compare(path: Path, suffix: str, actual: str) -> None:
    golden = path.with_suffix(suffix)
    if UPDATE:
        golden.write_text(actual)
    assert golden.exists(), f"missing golden {golden.name}; run with RACEFREE_UPDATE_GOLDEN=1"
    assert actual == golden.read_text()


@pytest.mark.parametrize("path", _cases("static_error"), ids=lambda p: p.stem)
def test_static_error(run_cli, path: Path) -> None:
    code, out, err = run_cli("check", str(path.relative_to(ROOT)))
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"{path.relative_to(ROOT)}:") and "error[RF" in first
    _compare(path, ".err", err)


@pytest.mark.parametrize("path", _cases("counterexample") + _cases("ok"), ids=lambda p: p.stem)
def test_check_transcript(run_cli, path: Path) -> None:
    code, out, err = run_cli("check", str(path.relative_to(ROOT)))
    assert code == 0, out
    _compare(path, ".out", normalise(out))
