"""The layout the pipeline relies on: what each stage imports is what `dvc.yaml` says it depends on."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
SCRIPTS = sorted(path.stem for path in (ROOT / "stages").glob("*.py") if path.stem != "__init__")


def project_imports(path: Path) -> set[Path]:
    """The project's own modules that ``path`` imports anywhere in it, function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {ROOT / f"{name.replace('.', '/')}.py" for name in names if name.startswith("stages.")}
    return {file for file in found if file.is_file()}


def code_closure(script: Path) -> set[str]:
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += project_imports(path)
    return {str(path.relative_to(ROOT)) for path in seen}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_exactly_the_code_it_imports(stage):
    declared = {dep for dep in STAGES[stage]["deps"] if dep.endswith(".py")}
    assert declared == code_closure(ROOT / f"stages/{stage}.py")


def test_packages_run_no_code_on_import():
    for init in (ROOT / "stages/__init__.py", ROOT / "stages/lib/__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0].value, ast.Constant), init  # a docstring only


@pytest.mark.parametrize("script", SCRIPTS)
def test_usage_names_the_command_and_tensorflow_stays_unloaded(script, tmp_path):
    code = (
        f"import sys, runpy; sys.argv = ['x', '--help']\n"
        f"try: runpy.run_module('stages.{script}', run_name='__main__')\n"
        f"except SystemExit: print('tensorflow' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert shown.stdout.startswith(f"usage: python -m stages.{script} ")
    assert shown.stdout.splitlines()[-1] == "False"  # --help and bad params answer without loading it


def test_a_stage_runs_as_a_file_too(tmp_path):
    shown = subprocess.run(
        [sys.executable, str(ROOT / "stages/train.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: python -m stages.train ")
