"""Research helpers of the experiment scripts (`experiments/NN_name.py`).

Above `evaluation/`: runs through the package API (`runs`), figure helpers (`figures`),
claims, verdicts and the docs/results.md renderer (`report`). `jaxserve reproduce` loads
the scripts and passes each a `Run` (mode and output folders).
"""

from jaxserve.research.report import verdict
from jaxserve.research.runs import Run

__all__ = ["Run", "verdict"]
