"""jaxserve: learned best-effort LLM serving as a jit/vmap JAX simulator and trainer."""

__version__ = "0.1.0"


def make(*args, **kwargs):
    """A gymnax-compatible serving environment: `(env, env_params)` (see `jaxserve.gym.make`).

    Imported on first call, so `import jaxserve` stays cheap.
    """
    from jaxserve.gym import make as make_env

    return make_env(*args, **kwargs)
