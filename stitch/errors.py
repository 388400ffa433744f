"""Project-wide exception type: one clear line for the user, no traceback needed."""


class StitchError(RuntimeError):
    """An error caused by bad input, a missing/corrupt file or an impossible request.

    The message is meant to be shown to the user as one line: say what was wrong and, where useful,
    which file and how to fix it.
    """
