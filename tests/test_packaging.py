"""Packaging: the version comes from git tags, through one module."""

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

import fractalscape as fs

ROOT = Path(__file__).parent.parent


def test_version_is_the_installed_distributions():
    """One source: the package's ``__version__`` is what pip installed, and a valid PEP 440 version."""
    assert fs.__version__ == version("fractalscape")
    assert Version(fs.__version__) > Version("0.1")
    assert "unknown" not in fs.__version__, "built without git history: fetch the tags and reinstall"


def _latest_tag():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    proc = subprocess.run(["git", "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*"],
                          cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _fallback_version():
    match = re.search(r'^fallback_version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    return match.group(1)


def test_version_follows_the_latest_git_tag():
    """At a tag vX.Y.Z the version is X.Y.Z; after it, a .dev version above it (setuptools-scm's rule).

    A clone without tags (CI's clean clone of main) counts from the fallback
    version in pyproject.toml, and still names its commit.
    """
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tag = _latest_tag()
    tagged = Version(tag.removeprefix("v") if tag else _fallback_version())
    installed = Version(fs.__version__)
    assert installed >= tagged, f"version {installed} is older than the tag {tag}: reinstall (pip install -e .)"
    if installed != tagged:
        assert installed.is_devrelease and re.search(r"\+g[0-9a-f]{7,}", fs.__version__), fs.__version__


def test_version_is_not_written_by_hand():
    """No tracked file pins a version: setup.cfg has none, and the generated module is ignored by git."""
    assert not re.search(r"^version\s*=", (ROOT / "setup.cfg").read_text(), re.M)
    assert "[tool.setuptools_scm]" in (ROOT / "pyproject.toml").read_text()
    assert "+" not in _fallback_version(), "the fallback must stay a plain release, or no-tag builds read '+unknown'"
    assert "fractalscape/_scm_version.py" in (ROOT / ".gitignore").read_text().splitlines()
