"""User-facing errors: one line that says what was wrong, where, and what to do; exit code 2."""


class TinycError(Exception):
    """A user-facing error: one line, exit code 2."""


class UnsupportedOperator(TinycError):
    """The model uses an operator (or an attribute of one) that tinyc cannot compile."""
