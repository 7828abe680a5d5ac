"""End-to-end serving on Flax OPT models (`jaxserve serve`, docs/serving.md) and profiling.

Modules: config (`ServeConfig`, `ProfileConfig`), tasks (task sets, tokenizers), executor
(batch calls), router (policies in the loop), engine (virtual clock), wall (wall clock),
setup (models, tasks and workload of a run), serve (`serve(config)`), results (the results
record), report (metrics, fidelity), profile (`run_profile(config)`), cpu (XLA CPU
threading). Only the configs are re-exported here: importing the simulator initialises the
JAX backend, which `cpu_threads` must precede, so `serve` and `run_profile` are imported
from their modules.
"""

from jaxserve.serving.config import ProfileConfig, ServeConfig

__all__ = ["ProfileConfig", "ServeConfig"]
