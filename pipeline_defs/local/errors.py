"""The local engine's errors: each is one message that names what is wrong and where, reported without a traceback.

- `DefinitionError`: the definition (or a parameter value) cannot run; found before any step starts.
- `ExpressionError`: a value could not be evaluated at run time (e.g. a Std:JsonGet path that is not in the file).
- `StepFailed`: a job failed at run time (its script exited non-zero, an input was empty, ...).
"""

from __future__ import annotations


class LocalRunError(Exception):
    """A problem with one clear message: the runner reports it as it is, without a traceback."""


class DefinitionError(LocalRunError):
    """The definition (or a parameter value) cannot run: found before any step starts."""


class ExpressionError(LocalRunError):
    """A value could not be evaluated at run time (e.g. a Std:JsonGet path that is not in the file)."""


class StepFailed(LocalRunError):
    """A job failed at run time (its script exited non-zero, an input was empty, ...)."""
