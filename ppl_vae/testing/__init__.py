"""Contract checks for your own models, guides, objectives and estimators, as the toolkit's own
tests run them on the built-in ones (after scikit-learn's ``check_estimator``).

>>> check_guide(MyGuide(784, 20), x, model=model)      # x: a small batch [N, 784]
>>> check_model(my_model, x, guide=guide)
>>> check_objective(build_objective("iwae", 4), model, guide, x)
>>> check_estimator(my_estimator)                      # an Estimator entry, or a name

Each check runs every clause of its contract (``CLAUSES``), collects every failure, and then
raises one ``ContractError`` (a ``UserError`` and an ``AssertionError``) whose message lists each
broken clause by its short name with the problem and the fix; its ``failures`` hold them as
``Failure(clause, message)``. A check that passes returns a ``ContractReport``: the clauses it
ran (``passed``) and the ones it could not (``skipped``, with the reason). Checks draw from
forks of the random streams and use an empty param store, so the caller's are left as they
were.
"""

from ..core.errors import ContractError
from .contracts import check_guide, check_model, check_pair
from .estimator import check_estimator
from .objective import check_objective
from .report import CLAUSES, ContractReport, Failure

__all__ = [
    "CLAUSES",
    "ContractError",
    "ContractReport",
    "Failure",
    "check_estimator",
    "check_guide",
    "check_model",
    "check_objective",
    "check_pair",
]
