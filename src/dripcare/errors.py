"""Errors a user can act on: the message says what was wrong and what to do."""


class UserError(Exception):
    """Bad input from a person or a script; the CLI prints it on one line and exits with 2."""


class NotFound(UserError):
    """A named object does not exist (or belongs to another clinic)."""
