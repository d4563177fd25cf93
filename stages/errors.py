"""How a stage reports a mistake the user can fix: one line, non-zero exit."""

import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad params, a bad input file or an unreachable dataset; never a bug."""


def run(main: Callable[[], None]) -> None:
    try:
        main()
    except UserError as error:
        sys.exit(f"error: {error}")
