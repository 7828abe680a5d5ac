"""`jaxserve bench`: throughput numbers (docs/spec.md §9) measured in one run, printed as JSON.

Timings live here and in experiments/, never in pass/fail tests.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time

import jax
import numpy as np

from jaxserve.errors import InputError
from jaxserve.keys import is_key_array
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.devices import lane_devices
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.rollout import counter_rollouts
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload


def _timed(fn, *args, repeats: int = 2) -> float:
    """Best wall time of `repeats` calls after one warm-up (compilation) call.

    Every call gets the same inputs (the same work); key arguments are cloned per call,
    since reusing them is on purpose here.
    """
    clone = lambda x: jax.random.clone(x) if is_key_array(x) else x
    fresh = lambda: jax.tree.map(clone, args)
    jax.block_until_ready(fn(*fresh()))
    best = np.inf
    for _ in range(repeats):
        call_args = jax.block_until_ready(fresh())
        start = time.perf_counter()
        jax.block_until_ready(fn(*call_args))
        best = min(best, time.perf_counter() - start)
    return best


def bench_simulator(
    scenario_name: str,
    num_envs: int,
    num_steps: int,
    rate: float,
    policy_names=("static:2", "greedy"),
    env_kind: str = "counter",
    repeats: int = 3,
    shard: bool = True,
) -> dict:
    """Router decisions/s of the JAX simulator, aggregated over vmapped environments.

    `env_kind`: "counter" = what sweeps and evaluation use (`make_env`: `CounterEnv`,
    lanes decoupled by `lane_rollouts`); "full" = `ServingEnv`, the per-request simulator
    behind records and decision credit, run record-free one decision per scan step.
    The arrivals are drawn before the clock starts, as `bench_reference` draws its own:
    both numbers time the simulator, not the workload generator. Best of `repeats` calls
    after one compiling call. `shard`: lanes split over every device (`shard_lanes`; the
    CLI makes one CPU device per core), else one device runs them all.
    """
    scenario = get_scenario(scenario_name)
    env = _env_of(env_kind, scenario)
    params = scenario.sim_params()
    wparams, generate = make_workload(
        WorkloadSpec(kind="poisson", rate=rate), scenario.num_tasks, num_steps
    )
    key_workload, key_run = jax.random.split(jax.random.key(1))
    arrivals = jax.jit(jax.vmap(lambda key: generate(key, wparams)))(
        jax.random.split(key_workload, num_envs)
    )
    keys = jax.random.split(key_run, num_envs)
    out = {}
    for name in policy_names:
        policy = make_policy(name, env, scenario)
        run = lambda keys, arrivals, policy=policy: counter_rollouts(
            env, policy, keys, params, arrivals, shard=shard
        )
        wall_s = _timed(sim_jit(run), keys, arrivals, repeats=repeats)
        out[name] = {"decisions_per_s": num_envs * num_steps / wall_s, "wall_s": wall_s}
    return out


def bench_reference(scenario_name: str, num_steps: int, rate: float, repeats: int = 3) -> dict:
    """Decisions/s of the plain-Python reference simulator on the same scenario and rate.

    The reference replays fixed actions (it has no policy hook), so it gets uniformly random
    ones: every model serves, as under the JAX runs' policies. Best of `repeats` runs, like
    the JAX timings (a single run of this pure-Python loop varies by ~15%).
    """
    from jaxserve.sim import reference

    scenario = get_scenario(scenario_name)
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.exponential(1.0 / rate, num_steps))
    tasks = rng.integers(0, scenario.num_tasks, num_steps)
    actions = rng.integers(0, scenario.num_models, num_steps)
    config, params = scenario.sim_config(), scenario.sim_params()
    wall_s = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        reference.simulate(config, params, times, tasks, actions)
        wall_s = min(wall_s, time.perf_counter() - start)
    return {"decisions_per_s": num_steps / wall_s, "wall_s": wall_s, "repeats": repeats}


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }


SECTIONS = ("sim", "opt", "learner")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What `jaxserve bench` measures: sections, simulator lanes and decisions per lane."""

    sections: tuple[str, ...] = ("sim",)  # among SECTIONS; "all" or "sim,opt" also accepted
    num_envs: int = 4096  # vmapped simulator lanes
    num_steps: int = 256  # decisions per lane per timed call
    quick: bool = False  # small sizes (64 lanes x 32 decisions), for smoke tests
    progress: bool = False  # a bar on stderr over the parts being measured

    def __post_init__(self):
        given = self.sections
        sections = SECTIONS if given == "all" else given
        if isinstance(sections, str):
            sections = sections.split(",")
        object.__setattr__(self, "sections", tuple(sections))
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise InputError(
                f"--sections {given!r}: unknown {sorted(unknown)}; expected "
                "sim, opt, learner or all"
            )
        for name in ("num_envs", "num_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"bench {name}={value!r}: expected an int >= 1")


def run_bench(config: BenchConfig) -> dict:
    """The requested benchmark sections (`sim`, `opt`, `learner`), measured in one run.

    `config.progress`: a bar on stderr over the parts (reference, each simulator run, opt,
    learner) with the part being measured, the elapsed time and an ETA.
    """
    from tqdm import tqdm

    num_envs, num_steps, quick = config.num_envs, config.num_steps, config.quick
    if quick:
        num_envs, num_steps = 64, 32
    result = {"machine": machine()}
    parts = []
    if "sim" in config.sections:
        parts += _sim_parts(num_envs, num_steps, quick)
    if "opt" in config.sections:
        parts.append(("opt", lambda done: _bench_opt(quick)))
    if "learner" in config.sections:
        parts.append(("learner", lambda done: _bench_learner(quick)))
    bar = tqdm(parts, desc="bench", unit="part", disable=not config.progress)
    for name, measure in bar:
        bar.set_postfix_str(name)
        result[name] = measure(result)
    return result


def _bench_opt(quick: bool) -> dict:
    from jaxserve.models.opt.bench import bench_opt

    return bench_opt(quick)


def _bench_learner(quick: bool) -> dict:
    from jaxserve.rl.bench import bench_learner

    return bench_learner(quick)


def _sim_parts(num_envs: int, num_steps: int, quick: bool) -> list:
    """(name, measure(results so far) -> dict) for the reference and each simulator run."""
    scenario, rate = "opt-a100x4", 200.0

    def reference(done):
        ref = bench_reference(scenario, 20_000 if not quick else 500, rate)
        return {"scenario": scenario, "rate": rate, **ref}

    def simulator(kind, envs, shard):
        def measure(done):
            sim = bench_simulator(scenario, envs, num_steps, rate, env_kind=kind, shard=shard)
            ref_per_s = done["reference"]["decisions_per_s"]
            return {
                "env": type(_env_of(kind, get_scenario(scenario))).__name__,
                "lane_devices": len(lane_devices()) if shard else 1,
                "scenario": scenario,
                "rate": rate,
                "num_envs": envs,
                "steps_per_env": num_steps,
                "policies": sim,
                "speedup_vs_reference": {
                    name: v["decisions_per_s"] / ref_per_s for name, v in sim.items()
                },
            }

        return measure

    # (section, simulator, lanes, sharded over every device)
    runs = [
        ("simulator", "counter", num_envs, True),
        ("simulator_one_device", "counter", num_envs, False),
        ("simulator_full", "full", num_envs, True),
    ]
    if not quick:  # per-op overheads amortise over more lanes: show how throughput scales
        runs.append(("simulator_x4_envs", "counter", 4 * num_envs, True))
    # The gymnax env's auto-reset step vs the plain step, 1024 envs (docs/environment.md).
    gym_envs = 64 if quick else 1024
    gym_autoreset = lambda done: _bench_gym_autoreset(scenario, rate, gym_envs, num_steps)
    return (
        [("reference", reference)]
        + [(name, simulator(kind, envs, shard)) for name, kind, envs, shard in runs]
        + [("gym_autoreset", gym_autoreset)]
    )


def _bench_gym_autoreset(scenario: str, rate: float, num_envs: int, num_steps: int) -> dict:
    from jaxserve.gym.bench import bench_autoreset

    return bench_autoreset(scenario, rate, num_envs, num_steps)


def _env_of(kind: str, scenario):
    """ "counter": what `make_env` gives without records; "full": `ServingEnv`."""
    config = dataclasses.replace(scenario.sim_config(), emit_records=False)
    return make_env(config) if kind == "counter" else ServingEnv(config)


__all__ = ["BenchConfig", "run_bench", "bench_simulator", "bench_reference"]
