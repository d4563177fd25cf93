"""The pipeline's stage scripts, as `dvc.yaml` runs them, and the commands people run.

The library they share is `stages.lib`.
"""
