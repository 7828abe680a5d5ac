"""End-to-end serving on Flax OPT models (`jaxserve serve`, docs/serving.md) and profiling.

Modules: tasks (task sets, tokenizers), executor (batch calls), router (policies in the
loop), engine (virtual clock), wall (wall clock), report (metrics, fidelity), serve (CLI
body), profile (`jaxserve profile`), cpu (XLA CPU threading). Nothing is re-exported here:
importing the simulator initialises the JAX backend, which `--cpu-threads` must precede.
"""
