"""What every stage's command line shares: its usage line, one-line errors and interruptions."""

import argparse
import errno
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stages.lib.errors import UserError

# File-system errors a user can act on: what to do, after the path and the problem.
ACTIONABLE = {
    errno.ENOSPC: "no space left on the device: free some space and rerun",
    errno.EDQUOT: "disk quota exceeded: free some space and rerun",
    errno.EACCES: "permission denied: make it writable for this user and rerun",
    errno.EPERM: "operation not permitted (immutable?): make it writable and rerun",
    errno.EROFS: "read-only file system: remount it read-write and rerun",
}


SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's KeyboardInterrupt is, so every cleanup on the way out runs."""


def _terminate(signum, frame):
    raise Terminated


@contextmanager
def interruptions_deferred() -> Iterator[Callable[[], None]]:
    """Within, Ctrl-C and SIGTERM are only noted, and raised when the yielded check is called;
    a second one is raised at once, to stop a run whose checks do not come.

    Raised inside TensorFlow (tracing a function, running a step) an interruption can corrupt
    the interpreter or abort the process; checked between steps, it ends the run cleanly. One
    noted when another error ends the block is dropped: that error is what is reported.
    """
    received: list[int] = []

    def check() -> None:
        if received:
            raise Terminated if received[0] == signal.SIGTERM else KeyboardInterrupt

    def note(number: int, frame) -> None:
        check()
        received.append(number)

    previous = {number: signal.signal(number, note) for number in SIGNALS}
    try:
        yield check
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    check()  # one that came after the last check


def parser(script: str, doc: str) -> argparse.ArgumentParser:
    """The parser of the stage in file ``script``, whose usage line is how it is run."""
    return argparse.ArgumentParser(
        prog=f"python -m stages.{Path(script).stem}", description=doc.splitlines()[0]
    )


def run(main: Callable[[], None]) -> None:
    """Run ``main``; mistakes a user can fix and interruptions end in one line, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        if error.errno not in ACTIONABLE:
            raise  # a bug or a broken machine: the traceback helps
        sys.exit(f"error: {error.filename}: {ACTIONABLE[error.errno]}")
    except KeyboardInterrupt as interruption:  # the temporary files are gone by now
        print("error: interrupted", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT))
