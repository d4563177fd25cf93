"""The named configurations of experiments/catalogue.yaml: dotted params, and `dvc exp run -S` arguments."""

import json
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("catalogue.yaml")


def load() -> dict[str, dict]:
    """Experiment name -> {dotted key: value}, every param but the plot's."""
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    experiments = {}
    for name, entry in catalogue["experiments"].items():
        changes = {}
        for group in entry.pop("base"):
            changes |= catalogue["shared"][group]
        experiments[name] = changes | entry
    return experiments


def set_arguments(changes: dict) -> list[str]:
    """``-S key=value`` for each change, values written as YAML reads them back."""
    return [argument for key, value in changes.items() for argument in ("-S", f"{key}={json.dumps(value)}")]
