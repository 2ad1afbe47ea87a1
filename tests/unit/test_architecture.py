"""The import rules of ARCHITECTURE.md hold (import-linter contracts in setup.cfg)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_layers_of_architecture_md_hold():
    pytest.importorskip("importlinter", reason="import-linter is in the [test] extra")
    # A fresh process: the contracts are checked against the code on disk, not against
    # whatever this test session has imported or patched.
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as lint;"
         " lint.main(['setup.cfg'])"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_broken_rule_is_caught(tmp_path):
    """The check can fail: a contract that the code breaks is reported as broken."""
    pytest.importorskip("importlinter", reason="import-linter is in the [test] extra")
    config = tmp_path / "broken.cfg"
    config.write_text("[importlinter]\nroot_packages =\n    csss_fhir\n\n"
                      "[importlinter:contract:wrong]\nname = wrong on purpose\n"
                      "type = forbidden\nsource_modules =\n    csss_fhir.api\n"
                      "forbidden_modules =\n    csss_fhir.workflow\n")
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as lint;"
         f" lint.main([{str(config)!r}])"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
