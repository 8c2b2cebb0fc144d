"""Errors that the command-line apps turn into one clear line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix: a config value, a missing file, a missing mirror folder.

    The message is one line that names the thing to fix.
    """

    exit_code = 2


class ConfigError(UserError):
    """The composed configuration is invalid."""


class MirrorError(UserError):
    """The offline dataset mirror lacks a dataset a task needs."""
