"""The errors a user can cause (a bad file, config field or input), as opposed to bugs.

L0. The entry point prints such an error's one-line message, which names the file, line or
field and what was expected, and exits non-zero, without a traceback."""


class UserError(Exception):
    """Base of the expected errors (CheckpointError, CheckpointMismatchError, InputError, ...)."""




class ConfigError(UserError, ValueError):
    """A config field with a value that cannot work; the message names the field."""


# What the entry point reports as one line: ours, plus a non-finite loss (the trainer's message
# says what to do) and a missing file or folder (the message names it and the field to set).
EXPECTED_ERRORS = (UserError, FloatingPointError, FileNotFoundError)
