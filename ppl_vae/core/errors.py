"""The errors a user can cause, in one place; each message names the problem and the fix.

Every class here derives from ``UserError`` and from the builtin error it has always been (a
``RecipeError`` is still a ``ValueError``), so ``except UserError`` catches what a user can fix
and nothing else: the CLI prints these as one line and lets any other exception, a bug, show
its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: an error in the input (a recipe, data, a run dir, an argument)."""


class InputError(UserError, ValueError):
    """An argument with a value the function cannot use; the message says what would do."""


class RecipeError(UserError, ValueError):
    """A recipe key or value is wrong; the message names the key, the file and the fix."""


class UnknownNameError(UserError, KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


class DataError(UserError, ValueError):
    """Data that a model or estimator cannot use; the message says what is wrong and the fix."""


class MissingDataError(UserError, FileNotFoundError):
    """Dataset files are not where they must be; the message lists the files and the folder."""


class ObjectiveError(UserError, ValueError):
    """An objective that cannot be used with this model, guide or option; says what to change."""


class SiteError(UserError, ValueError):
    """A sample site that per-data-point quantities cannot be computed for; says the fix."""


class RunDirError(UserError, FileExistsError):
    """A run dir that exists already (or is missing); the message says which flag to pass."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be trusted or read; the message says which file and why."""


class WriteError(UserError, OSError):
    """A file could not be written (a full disk, say); its previous version is intact."""


class TrainingDiverged(UserError, FloatingPointError):
    """The loss or the parameters became NaN or Inf; the last good checkpoint is kept."""


class ContractError(UserError, AssertionError):
    """A model, guide, objective or estimator that breaks the toolkit's contract, as found by
    ``ppl_vae.testing``; ``failures`` holds every ``(clause, message)`` found, not the first."""

    def __init__(self, message: str, failures: tuple = ()):
        super().__init__(message)
        self.failures = tuple(failures)

    @property
    def clauses(self) -> list[str]:
        """The names of the failed clauses, in the order they were found."""
        return list(dict.fromkeys(f.clause for f in self.failures))
