"""Mistakes a user can fix: reported by the stages as one line, with a non-zero exit."""


class UserError(Exception):
    """Bad params, a bad input file or an unreachable dataset; never a bug."""
