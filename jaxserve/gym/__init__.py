"""The serving simulator behind gymnax's `Environment` interface (docs/environment.md)."""

from jaxserve.gym.environment import Environment, LegacyStep
from jaxserve.gym.make import make
from jaxserve.gym.serving import EnvParams, EnvState, ServingGymEnv
from jaxserve.gym.spaces import Box, Discrete, Space

__all__ = [
    "Box",
    "Discrete",
    "EnvParams",
    "EnvState",
    "Environment",
    "LegacyStep",
    "ServingGymEnv",
    "Space",
    "make",
]
