"""Application layer: sweeps, population training, searches and evaluation.

Typed configs in, long-format `Records` out (docs/python-api.md). Built on `jaxserve.sim`
and `jaxserve.rl`, which never import it.
"""

from jaxserve.evaluation.chunk_log import CsvLog, TensorBoardLog
from jaxserve.evaluation.evaluate import evaluate_checkpoint, evaluate_members
from jaxserve.evaluation.halving import successive_halving
from jaxserve.evaluation.plan import PlanConfig, PlanResult, plan
from jaxserve.evaluation.records import Records, load_records
from jaxserve.evaluation.search import LogUniform, SearchSpace, Uniform, parse_search
from jaxserve.evaluation.sweep import SweepConfig, sweep
from jaxserve.evaluation.train import TrainConfig, TrainResult, train

__all__ = [
    "CsvLog",
    "LogUniform",
    "PlanConfig",
    "PlanResult",
    "Records",
    "SearchSpace",
    "SweepConfig",
    "TensorBoardLog",
    "TrainConfig",
    "TrainResult",
    "Uniform",
    "evaluate_checkpoint",
    "evaluate_members",
    "load_records",
    "parse_search",
    "plan",
    "successive_halving",
    "sweep",
    "train",
]
