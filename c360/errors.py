"""Errors the CLI turns into one clear line and a non-zero exit code."""


class C360Error(Exception):
    """Base class: a problem the user can fix (bad input, missing tool, port taken...)."""


class InputError(C360Error):
    """Bad input data: names the file, the column or the parameter at fault."""


class ToolMissingError(C360Error):
    """A required external tool (java, mvn) is not installed."""
