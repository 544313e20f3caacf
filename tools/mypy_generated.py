"""mypy --strict over the generated runtimes (``racefree gen`` output), as CI runs it.

mypy cannot follow setuptools' editable-install import hook, and this repository
maps its top-level folders onto ``racefree.*`` (pyproject ``package-dir``). So
this builds that mapping as a tree of symlinks in a temporary folder, points
MYPYPATH at it, and checks the package ``racefree.runtime.generated``.
racefree's own modules are analysed for their types but reported on elsewhere
(``--follow-imports=silent``): the strictness claim is about generated code.

    python tools/mypy_generated.py             # the whole package racefree.runtime.generated
    python tools/mypy_generated.py slots ...   # only these generated modules
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "racefree"
        pkg.mkdir()
        for name, folder in mapping.items():
            parts = name.split(".")
            if len(parts) == 1:  # the top package: link its files, sub-packages are linked below
                for f in (ROOT / folder).iterdir():
                    (pkg / f.name).symlink_to(f)
            else:
                (pkg / parts[1]).symlink_to(ROOT / folder, target_is_directory=True)
        env = {**os.environ, "MYPYPATH": tmp}
        targets = ["-p", "racefree.runtime.generated"]
        if sys.argv[1:]:
            targets = [x for name in sys.argv[1:] for x in ("-m", f"racefree.runtime.generated.{name}")]
        cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir",
               str(ROOT / ".mypy_cache"), *targets]
        return subprocess.run(cmd, env=env, cwd=tmp, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
