"""Write outputs under a temporary name and move them into place when complete.

An interrupted stage then never leaves a half-written file, or a half-filled folder, that
DVC or the next stage could mistake for a finished one.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _temporary_name(path: Path) -> Path:
    # Keep the suffix: NumPy and Keras pick the format from it.
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def _naming(path: Path, stand_in: Path) -> Iterator[None]:
    """An OSError raised meanwhile names ``path``, not its temporary ``stand_in`` nor nothing.

    A write to an open file (no space left, say) raises an error that names no file.
    """
    try:
        yield
    except OSError as error:
        if error.filename is None or Path(error.filename).is_relative_to(stand_in):
            error.filename, error.filename2 = str(path), None
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``."""
    for stale in path.parent.glob(f".{path.stem}.tmp-*{path.suffix}"):
        _remove(stale)  # left by a killed run (SIGKILL: nothing cleans up)
    temporary = _temporary_name(path)
    try:
        with _naming(path, temporary):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield temporary
            os.replace(temporary, path)
    finally:
        _remove(temporary)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; on success it replaces the folder ``path`` whole."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run: never trusted
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    previous = path.with_name(f"{temporary.name}-previous")
    try:
        with _naming(path, temporary):
            temporary.mkdir(parents=True)
            yield temporary
            if path.exists():  # two renames: a folder cannot replace a folder in one
                path.rename(previous)
            temporary.rename(path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)
