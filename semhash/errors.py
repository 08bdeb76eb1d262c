"""The one exception semhash raises for bad input: its message names the file and the fix."""


class SemhashError(Exception):
    """A problem with the user's input or files that semhash can explain in one line."""


class UsageProblem(SemhashError):
    """Misuse of a command, such as asking an index of images with text: the command line answers it
    as a usage error."""
