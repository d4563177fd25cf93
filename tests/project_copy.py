"""A working copy of the project's own files (no outputs), with params changed by dotted keys.

Used by the end-to-end tests and the benchmark, which both run real DVC commands in it.
"""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("dvc.lock", "data", "models", "metrics", "plots", "dvc_plots")  # pipeline outputs, not copied


def set_dotted(raw: dict, changes: dict) -> dict:
    """Set {"model.type": "cnn", ...} in nested params; returns ``raw``."""
    for key, value in changes.items():
        *parents, last = key.split(".")
        section = raw
        for part in parents:
            section = section[part]
        section[last] = value
    return raw


def copy_project(destination: Path, **changes) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if name.split("/")[0] not in GENERATED and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    set_params(destination, changes)


def set_params(directory: Path, changes: dict) -> None:
    """Change dotted keys of ``directory/params.yaml`` in place."""
    raw = yaml.safe_load((directory / "params.yaml").read_text())
    (directory / "params.yaml").write_text(yaml.safe_dump(set_dotted(raw, changes), sort_keys=False))


def init_git(directory: Path) -> None:
    """A repository with one commit, as DVC experiments need."""
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "copy@example.com"],
        ["git", "config", "user.name", "copy"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project copy"],
    ):
        subprocess.run(args, cwd=directory, check=True, capture_output=True)
