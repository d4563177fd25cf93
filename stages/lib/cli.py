"""What every stage's command line shares: its usage line and one-line errors."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from stages.lib.errors import UserError


def parser(script: str, doc: str) -> argparse.ArgumentParser:
    """The parser of the stage in file ``script``, whose usage line is how it is run."""
    return argparse.ArgumentParser(
        prog=f"python -m stages.{Path(script).stem}", description=doc.splitlines()[0]
    )


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
