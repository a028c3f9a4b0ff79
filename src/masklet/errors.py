"""Error types that name the problem for the user.

Every error a user can cause (bad file, bad prompt, wrong checkpoint) derives from
`MaskletError`; the CLI prints its message on one line and exits with code 2.
"""

from __future__ import annotations


class MaskletError(Exception):
    """Base class of all user-facing masklet errors."""


class CheckpointError(MaskletError):
    """A checkpoint file is missing, unreadable, truncated or belongs to another model."""


class ConfigError(MaskletError, ValueError):
    """A configuration value is invalid (unknown preset, bad image size, ...)."""


class InputError(MaskletError, ValueError):
    """An input (image, video, prompt, mask, object id, frame index) is invalid."""


class PredictorStateError(MaskletError, RuntimeError):
    """A predictor method was called before the state it needs exists (e.g. no image set)."""
