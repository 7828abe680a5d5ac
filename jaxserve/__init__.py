"""jaxserve: learned best-effort LLM serving as a jit/vmap JAX simulator and trainer."""

__version__ = "0.1.0"
