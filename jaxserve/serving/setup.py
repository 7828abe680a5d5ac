"""Everything a served run needs, built and checked before the clock starts.

Models, task set, policy and the workload draw of a `ServeConfig`. The simulator modules are
imported inside `build_setup`: importing jaxserve.sim.env initialises the JAX backend, which
must wait for `cpu_threads`.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax

from jaxserve.errors import InputError
from jaxserve.serving.config import ServeConfig
from jaxserve.serving.executor import ModelRunner
from jaxserve.serving.tasks import TaskSet, make_tokenizer, read_task_rows


@dataclasses.dataclass
class Setup:
    """Everything a served run needs, built and validated before the clock starts."""

    scenario: object
    workload: object
    policy: object
    policy_name: str
    runners: list  # per model: list of ModelRunner, one per replica (wall) or one (virtual)
    task_set: TaskSet
    arrivals: object
    key_run: object
    measured_quality: bool
    model_sources: list


def model_sources(config: ServeConfig, scenario) -> list[str]:
    """Where each scenario model's weights come from: `config.models` or the model names."""
    if config.models is None:
        return list(scenario.model_names)
    sources = [m.strip() for m in config.models]
    if len(sources) != scenario.num_models:
        raise InputError(
            f"--models = {','.join(config.models)!r}: {len(sources)} models, expected "
            f"{scenario.num_models} (one per model of scenario {scenario.name!r})"
        )
    return sources


def _replica_devices(num_replicas: int, first: int, clock: str) -> list:
    """Device of each replica: round-robin over local devices (wall); one default (virtual)."""
    if clock == "virtual":
        return [None]
    devices = jax.local_devices()
    return [devices[(first + r) % len(devices)] for r in range(num_replicas)]


def load_runners(config: ServeConfig, scenario, max_token: int) -> tuple[list, bool]:
    """Per model the runners (one per replica for the wall clock); real weights for all?"""
    from jaxserve.serving.profile import load_model

    runners, all_real, first = [], True, 0
    for k, source in enumerate(model_sources(config, scenario)):
        opt_config, params = load_model(source, config.dtype)
        all_real &= pathlib.Path(source).is_dir()
        if max_token >= opt_config.vocab_size:
            raise InputError(
                f"--models {source!r}: vocab_size {opt_config.vocab_size} <= token id "
                f"{max_token} of the task set's tokenizer; expected a larger "
                "vocabulary or another --tokenizer"
            )
        devices = _replica_devices(scenario.replicas[k], first, config.clock)
        first += scenario.replicas[k]
        runners.append(
            [
                ModelRunner(
                    opt_config,
                    params,
                    config.prompt_tokens,
                    config.mode,
                    config.gen_tokens,
                    device,
                )
                for device in devices
            ]
        )
    return runners, all_real


def build_setup(config: ServeConfig) -> Setup:
    """Resolve the scenario, workload and policy; load models, tasks and the workload draw."""
    from jaxserve.evaluation.simulate import resolve_policy
    from jaxserve.sim.env import ServingEnv
    from jaxserve.sim.parse import episode_length, parse_workload
    from jaxserve.sim.scenarios import get_scenario, with_miss_penalty
    from jaxserve.sim.workloads import make_workload

    scenario = with_miss_penalty(get_scenario(config.scenario), config.miss_penalty)
    workload = parse_workload(config.workload, scenario.workload, config.rate)
    n = episode_length(workload, config.num_requests)
    policy = resolve_policy(
        config.policy,
        ServingEnv(scenario.sim_config()),
        scenario,
        workload.task_mix,
        config.availability_target,
        workload.knob_schedule,
    )
    tokenizer = make_tokenizer(config.tokenizer)
    task_set = TaskSet(
        read_task_rows(config.tasks),
        scenario.task_names,
        tokenizer,
        config.prompt_tokens,
        seed=config.seed,
    )
    runners, all_real = load_runners(config, scenario, task_set.max_token)
    wparams, generate = make_workload(workload, scenario.num_tasks, n)
    key_workload, key_run = jax.random.split(jax.random.key(config.seed))  # as simulate
    measured = config.quality == "measured" or (config.quality == "auto" and all_real)
    return Setup(
        scenario,
        workload,
        policy,
        config.policy,
        runners,
        task_set,
        jax.jit(generate)(key_workload, wparams),
        key_run,
        measured,
        model_sources(config, scenario),
    )
