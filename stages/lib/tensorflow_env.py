"""TensorFlow's process-wide settings: the stages that use TensorFlow call ``configure()`` first.

TensorFlow reads them once, when it is imported, so ``configure()`` imports it.
"""

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 or newer; they
# speed up convolutions on AVX2 CPUs too. Inside XLA they slowed the compiled dense step, so
# XLA keeps its own kernels.
ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
XLA_ONEDNN_FLAG = "--xla_cpu_experimental_onednn_custom_call"
# TensorFlow's own verbosity switch: 0 shows every C++ log line, 3 only fatal ones. 3 by
# default: at 2, a machine without GPUs logs a CUDA error at every start.
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LOG_LEVEL = 3
# An absl log record (severity letter first), or absl's notice that logging is not set up yet.
_RECORD = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\]|(WARNING): All log messages before absl")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3, "WARNING": 1}


def configure() -> None:
    """Set the kernels and the log level (a user's own setting wins), then import TensorFlow."""
    os.environ.setdefault(ONEDNN, "1")
    if XLA_ONEDNN_FLAG not in os.environ.get("XLA_FLAGS", ""):  # a stage's subprocess inherits it
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONEDNN_FLAG}=false".strip()
    os.environ.setdefault(LOG_LEVEL, str(DEFAULT_LOG_LEVEL))
    if "tensorflow" in sys.modules:
        return
    with _startup_lines_filtered(int(os.environ[LOG_LEVEL])):
        import tensorflow  # noqa: F401


class StartupFilter:
    """Feeds on C++ stderr lines; passes on those not in an absl record below ``min_level``."""

    def __init__(self, min_level: int):
        self.min_level, self.dropping = min_level, False

    def __call__(self, line: str) -> str:
        record = _RECORD.match(line)
        if record:  # else a record's continuation line, kept or dropped with it
            self.dropping = _SEVERITY[record.group(1) or record.group(2)] < self.min_level
        return "" if self.dropping else line


@contextmanager
def _startup_lines_filtered(min_level: int) -> Iterator[None]:
    """Filter what C++ code writes to stderr meanwhile; Python's own writes pass untouched.

    Since TensorFlow 2.19, its start-up lines (CUDA probes, CPU features, oneDNN) are written
    before absl's logging reads TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442), so the
    variable alone no longer hides them. Lines are forwarded as they come: a fatal one is
    seen even if the import aborts the process.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    python_stderr, sys.stderr = sys.stderr, open(os.dup(saved), "w", buffering=1)  # noqa: SIM115

    def forward() -> None:
        keep = StartupFilter(min_level)
        with open(read_end, "rb") as lines:
            for line in lines:
                os.write(saved, keep(line.decode(errors="replace")).encode())

    forwarder = threading.Thread(target=forward, daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        os.dup2(saved, 2)  # the pipe's last writer closes: the forwarder reads to the end
        forwarder.join(timeout=10)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.close(saved)
