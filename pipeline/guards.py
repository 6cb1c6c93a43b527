"""Numerical guards: a NaN or inf stops a run with a message naming the quantity and where it appeared."""

from __future__ import annotations


class NonFiniteError(RuntimeError):
    """A loss, parameter or observation became NaN or infinite; the message names it, the step and the
    last good resume state (which is kept)."""
