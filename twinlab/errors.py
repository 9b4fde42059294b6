"""The one exception type for bad user input.

Raised wherever a value a user chose (a spec field, a file, a command-line option) is wrong.
The command line turns it into a one-line message and exit status 2; anything else that
escapes is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A user-supplied value, name or file is unusable; the message says which and why."""
