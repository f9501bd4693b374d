"""Errors the device runtime raises; each message says what was wrong and what to do."""


class EdgesplitError(Exception):
    """Base class for errors a user can act on."""


class ModelFileError(EdgesplitError):
    """A model file is missing, unreadable or not a valid ONNX model."""


class ModelInputError(EdgesplitError):
    """An input does not match the model's declared name, shape or element type."""


class ToolMissingError(EdgesplitError):
    """An external program (e.g. espeak-ng) the workload needs is not installed."""
