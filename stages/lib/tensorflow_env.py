"""TensorFlow's process-wide settings: the stages that use TensorFlow call ``configure()`` first.

TensorFlow reads them once, when it is imported, so ``configure()`` imports it.
"""

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 or newer; they
# speed up convolutions on AVX2 CPUs too. Inside XLA they slowed the compiled dense step, so
# XLA keeps its own kernels.
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
XLA_OWN_KERNELS = "--xla_cpu_experimental_onednn_custom_call=false"
# TensorFlow's own verbosity switch: 0 shows every C++ log line, 3 only fatal ones.
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LOG_LEVEL = 3
# An absl log record (severity letter first), or absl's notice that logging is not set up yet.
_RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\]|(WARNING): All log messages before absl")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3, "WARNING": 1}


def configure() -> None:
    """Set the kernels and the log level (a user's own setting wins), then import TensorFlow."""
    os.environ.setdefault(ONEDNN, "1")
    if XLA_OWN_KERNELS not in os.environ.get("XLA_FLAGS", ""):  # a stage's subprocess inherits it
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_OWN_KERNELS}".strip()
    os.environ.setdefault(LOG_LEVEL, str(DEFAULT_LOG_LEVEL))
    if "tensorflow" in sys.modules:
        return
    with _startup_lines_filtered(int(os.environ[LOG_LEVEL])):
        import tensorflow  # noqa: F401


@contextmanager
def _startup_lines_filtered(min_level: int) -> Iterator[None]:
    """Hold back the C++ lines written to stderr meanwhile whose severity is below ``min_level``.

    Since TensorFlow 2.19, its start-up lines (CUDA probes, CPU features, oneDNN) are written
    before absl's logging reads TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442), so the
    variable alone no longer hides them; everything else written meanwhile passes through.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(without_startup_lines(captured.read().decode(errors="replace"), min_level))


def without_startup_lines(text: str, min_level: int) -> str:
    """``text`` without the absl records below ``min_level`` (with their continuation lines)."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record:
            dropping = _SEVERITY[record.group(1) or record.group(2)] < min_level
        if not dropping:
            kept.append(line)
    return "".join(kept)
