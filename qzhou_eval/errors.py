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


class DeviceError(UserError):
    """A device or a data-parallel worker failed mid-run (out of memory, a worker died).

    Finished results and stored vectors are kept; the message names the device.
    """

    exit_code = 1


class ModelLoadError(UserError):
    """The model or its tokenizer cannot be loaded from ``model.path`` (missing or bad files)."""
