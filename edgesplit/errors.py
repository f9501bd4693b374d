"""One error tree for the whole project, rooted in :class:`EdgesplitError` (as httpx does).

Each boundary has its own subclass, so a caller can catch exactly what it can act on, and the CLI
catches the root once and prints the message as one line. Every message says what was wrong (field,
value, unit, file) and what to do. Subclasses that used to be plain ``ValueError`` still are, so
``except ValueError`` in user code keeps working.
"""

from __future__ import annotations


class EdgesplitError(Exception):
    """Base class for every error a user can act on."""


class ConfigError(EdgesplitError, ValueError):
    """A configuration (scenario, model config, CLI option) has a bad field or value."""


class InputError(EdgesplitError, ValueError):
    """An input (file, tensor, request, sensor frame) is malformed or out of range."""


class ModelError(EdgesplitError):
    """A model is missing, unreadable, or failed to load or run."""


class ToolMissingError(EdgesplitError):
    """An external program or package the workload needs is not installed."""


class LinkError(EdgesplitError):
    """The link to another tier (serial port, network, emulator) failed or carried bad data."""


class CloudError(EdgesplitError):
    """The cloud service refused, failed or could not be reached."""
