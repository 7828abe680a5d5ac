"""Scenarios: built-ins, zoo, TOML round trip, profiles, every bad input (docs/spec.md §6, §8)."""

import copy
import dataclasses
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.sim import scenarios as S
from jaxserve.sim.types import NEVER_S

ZOO_7 = ("opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b", "opt-6.7b", "opt-13b", "opt-30b")


def base_dict() -> dict:
    """A valid parsed-TOML scenario: two models, two tasks."""
    return {
        "name": "t",
        "models": [
            {"name": "a", "replicas": 1, "queue_capacity": 4, "latency_s": [0.1, 0.15]},
            {"name": "b", "replicas": 2, "latency_s": [0.2, 0.3, 0.4]},
        ],
        "tasks": [
            {"name": "x", "deadline_s": 1.0, "quality": [0.5, 0.9]},
            {"name": "y", "deadline_s": 2, "grace_s": 0.5, "quality": {"a": 0.1, "b": 0.2}},
        ],
        "workload": {"kind": "gamma", "rate": 3.0, "cv": 2.0, "task_mix": [0.25, 0.75]},
    }


def test_base_dict_builds_with_defaults():
    s = S.scenario_from_dict(base_dict())
    assert s.max_batch == (2, 3)
    assert s.queue_capacity == (4, 6)  # default 2 × max_batch
    assert s.grace_s == (1.0, 0.5) and s.deadline_s == (1.0, 2.0)
    assert s.max_wait_s == (0.0, 0.0) and s.drop_expired is True
    assert s.quality == ((0.5, 0.9), (0.1, 0.2))
    assert s.workload.cv == 2.0


def test_sim_config_and_params_shapes():
    s = S.scenario_from_dict(base_dict())
    config, params = s.sim_config(), s.sim_params()
    assert config.max_batch == (2, 3) and config.replicas == (1, 2) and config.num_tasks == 2
    assert params.latency_s.shape == (2, 3) and params.quality.shape == (2, 2)
    assert float(params.latency_s[0, 2]) == NEVER_S  # padded past max_batch
    assert params.deadline_s.dtype == jnp.float32 and params.miss_penalty.shape == ()


def test_capacity_and_peak_by_hand():
    s = S.scenario_from_dict(base_dict())
    # min deadline 1.0: model a max(1/0.1, 2/0.15) = 13.33; model b 2 × max(5, 6.67, 7.5) = 15.
    np.testing.assert_allclose(s.capacity_per_model(), [2 / 0.15, 15.0])
    assert s.peak_quality() == pytest.approx(0.25 * 0.9 + 0.75 * 0.2)
    assert s.peak_quality([0.5, 0.5]) == pytest.approx(0.55)


@pytest.mark.parametrize("name", ["opt-a100x4", "opt-a100x8-large", "two-model-example"])
def test_builtins_build_and_round_trip(name, tmp_path):
    s = S.get_scenario(name)
    path = tmp_path / "s.toml"
    path.write_text(S.scenario_to_toml(s))
    assert S.load_scenario_toml(path) == s
    assert S.get_scenario(str(path)) == s


def test_opt_a100x4_matches_the_documented_numbers():
    s = S.get_scenario()
    assert s.name == "opt-a100x4" and s.model_names == S.PAPER_MODELS
    assert s.task_names == S.PAPER_TASKS and s.replicas == (1, 1, 2)
    assert s.quality[0] == (0.379, 0.5793, 0.6771)  # lambada_openai row of the CSV
    assert s.deadline_s == (S.PAPER_DEADLINE_S,) * 4
    assert S.PAPER_DEADLINE_S == S.roofline_deadline_s(s.latency_s)  # the stated rule
    large = s.latency_s[2]
    assert 4 * large[0] <= S.PAPER_DEADLINE_S  # low load: 6.7B alone meets it comfortably
    mu = s.capacity_per_model()
    assert 150 < mu[2] < 300 and mu[0] > 10 * mu[2]  # high load: 6.7B saturates first


def test_opt_a100x8_large():
    s = S.get_scenario("opt-a100x8-large")
    assert s.model_names == ("opt-6.7b",) and s.replicas == (8,)
    assert s.quality == tuple((row[2],) for row in S.get_scenario().quality)


def test_zoo_with_seven_models(tmp_path):
    s = S.zoo_scenario(ZOO_7)
    assert s.num_models == 7 and len(s.quality) == 4 and all(len(r) == 7 for r in s.quality)
    assert s.sim_params().latency_s.shape == (7, max(s.max_batch))
    for row in s.quality[:2]:  # lambada, piqa grow with size, measured or interpolated
        assert list(row) == sorted(row)
    path = tmp_path / "zoo.toml"
    path.write_text(S.scenario_to_toml(s))
    assert S.load_scenario_toml(path) == s


def test_latency_profile_json_with_interpolation(tmp_path):
    """Profile paths are relative to the TOML file; missing batch sizes are interpolated."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.json").write_text(
        json.dumps({"model": "a", "latency_s": [0.1, 0.2, 0.4], "batch_sizes": [1, 2, 4]})
    )
    text = S.scenario_to_toml(S.get_scenario("two-model-example"))
    text = text.replace(
        "latency_s = [0.01, 0.012, 0.014, 0.016]", 'latency_profile = "profiles/p.json"'
    )
    (tmp_path / "s.toml").write_text(text)
    s = S.load_scenario_toml(tmp_path / "s.toml")
    np.testing.assert_allclose(s.latency_s[0], [0.1, 0.2, 0.3, 0.4])
    assert s.latency_s[1] == (0.04, 0.06, 0.08, 0.1)


def _set(path: str, value):
    """A modifier of base_dict: set (or delete, value=...) the item at a dotted path."""

    def modify(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        if value is ...:
            del d[int(last) if last.isdigit() else last]
        else:
            d[int(last) if last.isdigit() else last] = value

    return modify


BAD = [
    ("models.0.latency_s", [0.1, 0.05], r"models\[0\]\.latency_s\[1\] = 0\.05: expected ≥ 0\.1"),
    ("models.0.latency_s", [0.0, 0.1], r"models\[0\]\.latency_s\[0\] = 0\.0: expected a finite"),
    ("models.0.latency_s", [-1.0], r"models\[0\]\.latency_s\[0\] = -1\.0"),
    ("models.0.latency_s", [math.nan], r"models\[0\]\.latency_s\[0\] = nan"),
    ("models.0.latency_s", [], r"models\[0\]\.latency_s = \[\]: expected a non-empty"),
    ("tasks.0.quality", [0.5, 1.2], r"tasks\[0\]\.quality\[1\] = 1\.2: expected .*≤ 1"),
    ("tasks.0.quality", [0.5, -0.1], r"tasks\[0\]\.quality\[1\] = -0\.1"),
    ("tasks.0.quality", [math.nan, 0.5], r"tasks\[0\]\.quality\[0\] = nan"),
    ("tasks.0.quality", [0.5], r"len\(tasks\[0\]\.quality\) = 1: expected 2"),
    ("tasks.1.quality", {"a": 0.1}, r"tasks\[1\]\.quality\.b"),
    ("tasks.1.quality", {"a": 0.1, "b": 0.2, "c": 0.3}, r"unknown key .* = 'c'"),
    (
        "tasks.0.deadline_s",
        -1.0,
        r"tasks\[0\]\.deadline_s = -1\.0: expected a finite number ≥ 1e-07 and ≤ 1000000",
    ),
    ("tasks.0.deadline_s", math.nan, r"tasks\[0\]\.deadline_s = nan"),
    ("tasks.0.deadline_s", ..., r"tasks\[0\]\.deadline_s = None: expected a value"),
    ("tasks.0.grace_s", 0.0, r"tasks\[0\]\.grace_s = 0\.0"),
    ("tasks.1.name", "x", r"tasks\[\]\.name = .*: expected distinct"),
    ("models.1.replicas", 0, r"models\[1\]\.replicas = 0: expected an integer in \[1, 1024\]"),
    ("models.1.replicas", 1.5, r"models\[1\]\.replicas = 1\.5"),
    ("models.0.queue_capacity", -3, r"models\[0\]\.queue_capacity = -3"),
    ("models.0.max_wait_s", -0.1, r"models\[0\]\.max_wait_s = -0\.1"),
    ("models.0.max_batch", 5, r"models\[0\]\.max_batch = 5: expected ≤ 2"),
    ("models.0.latency", [0.1], r"unknown key in models\[0\] = 'latency'"),
    ("models.0.latency_profile", "p.json", r"exactly one of the two"),
    ("colour", "red", r"unknown key in scenario = 'colour'"),
    ("models", [], r"models = \[\]: expected one or more"),
    ("tasks", ..., r"scenario\.tasks = None: expected a value"),
    ("batching", "fifo", r"batching = 'fifo': expected one of \['max', 'deadline'\]"),
    ("deadline_kind", "firm", r"deadline_kind = 'firm'"),
    ("decay", "step", r"decay = 'step'"),
    ("obs_mode", "all", r"obs_mode = 'all'"),
    ("drop_expired", "yes", r"drop_expired = 'yes': expected true or false"),
    ("miss_penalty", -1.0, r"miss_penalty = -1\.0"),
    ("noise_sigma", math.nan, r"noise_sigma = nan"),
    ("reference_rate", 0.0, r"reference_rate = 0\.0: expected a finite number ≥ 0\.001"),
    ("rate_window_s", math.inf, r"rate_window_s = inf"),
    ("workload.kind", "bursty", r"kind = 'bursty'"),
    ("workload.rate", -5.0, r"rate = -5\.0"),
    ("workload.rate", math.nan, r"rate = nan"),
    ("workload.task_mix", [1.0], r"len\(workload task mix\) = 1: expected 2"),
    ("workload.task_mix", [0.5, 0.6], r"task_mix"),
    ("workload.burst", 2.0, r"unknown key in \[workload\] = 'burst'"),
    # Beyond what float32 seconds or one machine's memory hold (docs/limits.md):
    ("models.0.latency_s", [1e300, 1e300], r"models\[0\]\.latency_s\[0\] = 1e\+300"),
    ("models.0.latency_s", [1e-300, 0.1], r"models\[0\]\.latency_s\[0\] = 1e-300"),
    ("models.1.replicas", 100_000_000, r"replicas = 100000000: expected an integer in"),
    ("models.0.queue_capacity", 1_000_000_000, r"queue_capacity = 1000000000: expected"),
    ("models.0.queue_capacity", 65_535, r"models\[0\] = '65537 slots'"),
    ("tasks.0.deadline_s", 1e7, r"deadline_s = 10000000\.0: expected .* ≤ 1000000"),
    ("miss_penalty", 1e300, r"miss_penalty = 1e\+300"),
    ("workload.rate", 1e30, r"rate = 1e\+30: expected .*<= 10000000"),
    ("workload.rate", 1e-30, r"rate = 1e-30: expected .*>= 0\.001"),
]


@pytest.mark.parametrize("path, value, match", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_input_is_one_clear_line(path, value, match):
    d = copy.deepcopy(base_dict())
    _set(path, value)(d)
    with pytest.raises(InputError, match=match) as err:
        S.scenario_from_dict(d)
    assert "\n" not in str(err.value)


def test_bad_dataclass_shapes():
    s = S.get_scenario("two-model-example")
    with pytest.raises(InputError, match=r"len\(replicas\) = 1: expected 2"):
        dataclasses.replace(s, replicas=(1,))
    with pytest.raises(InputError, match=r"len\(quality\) = 1: expected 2"):
        dataclasses.replace(s, quality=((0.5, 0.5),))
    with pytest.raises(InputError, match=r"len\(deadline_s\) = 3: expected 2"):
        dataclasses.replace(s, deadline_s=(1.0, 1.0, 1.0))
    with pytest.raises(InputError, match=r"len\(latency_s\) = 1: expected 2"):
        dataclasses.replace(s, latency_s=((0.1,),))


def test_numpy_inputs_and_scalar_mistakes():
    s = S.get_scenario("two-model-example")
    r = dataclasses.replace(s, quality=np.asarray(s.quality), replicas=np.asarray([1, 2]))
    assert r == s
    with pytest.raises(InputError, match=r"len\(replicas\) = 'int': expected 2"):
        dataclasses.replace(s, replicas=2)


def test_toml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(InputError, match=r"bad\.toml: invalid TOML"):
        S.load_scenario_toml(bad)
    good = S.scenario_to_toml(S.get_scenario("two-model-example"))
    bad.write_text(good.replace("quality = [0.8, 0.9]", "quality = [0.8, 1.9]"))
    with pytest.raises(InputError, match=r"bad\.toml: tasks\[0\]\.quality\[1\] = 1\.9"):
        S.load_scenario_toml(bad)
    with pytest.raises(InputError, match=r"scenario file = .*missing\.toml"):
        S.load_scenario_toml(tmp_path / "missing.toml")


def test_unknown_scenario_name():
    with pytest.raises(InputError, match=r"scenario = 'opt-tpu': expected a built-in name"):
        S.get_scenario("opt-tpu")


@pytest.mark.parametrize(
    "payload, match",
    [
        ({"latency_s": [0.2, 0.1]}, r"latency_s\[1\] = 0\.1"),
        ({"latency_s": [0.1, 0.2], "batch_sizes": [2, 4]}, r"batch_sizes = \[2, 4\]"),
        ({"latency_s": [0.1, 0.2], "batch_sizes": [1]}, r"batch_sizes\) = 1: expected 2"),
        ({"model": "a"}, r"latency_s = None"),
    ],
)
def test_bad_profile_json(tmp_path, payload, match):
    (tmp_path / "p.json").write_text(json.dumps(payload))
    with pytest.raises(InputError, match=match):
        S.load_latency_profile(tmp_path / "p.json")


def test_unreadable_profile_json(tmp_path):
    (tmp_path / "p.json").write_text("{not json")
    with pytest.raises(InputError, match="expected a readable JSON"):
        S.load_latency_profile(tmp_path / "p.json")


def test_unknown_task_and_missing_quality_csv(tmp_path):
    with pytest.raises(InputError, match=r"task = 'squad'"):
        S.zoo_scenario(["opt-125m"], task_names=["squad"])
    with pytest.raises(InputError, match="quality csv"):
        S.read_quality_csv(tmp_path / "nowhere.csv")


def test_opt_a100x4_runs_in_the_simulator():
    """sim_config/sim_params feed ServingEnv: 20 arrivals at 1000/s all sent to OPT-6.7B."""
    import jax

    from jaxserve.sim.env import ServingEnv
    from jaxserve.sim.rollout import counter_rollout
    from jaxserve.sim.workloads import fixed_arrivals

    s = S.get_scenario()
    env, params = ServingEnv(s.sim_config()), s.sim_params()
    arrivals = fixed_arrivals([0.001 * i for i in range(1, 21)], [i % 4 for i in range(20)])
    policy = lambda key, obs, state, params: jnp.int32(2)
    counters = jax.jit(lambda key: counter_rollout(env, policy, key, params, arrivals))(
        jax.random.key(0)
    )
    assert int(counters.num_arrived) == 20 and int(counters.num_outcome.sum()) == 20
    assert int(counters.num_outcome[0]) > 0  # some meet the 60 ms deadline


def test_fifo_fast_path_is_decided_in_one_place():
    """Deadline order = arrival order only with one deadline and one factor for every request."""
    one = S.zoo_scenario(["opt-125m", "opt-1.3b"], deadline_s=0.1)
    assert one.sim_config().fifo_deadlines
    schedule = dataclasses.replace(one.workload, deadline_schedule=((10.0, 1.0), (10.0, 0.5)))
    assert not one.sim_config(schedule).fifo_deadlines
    assert not one.sim_config(observe_deadline=True).fifo_deadlines
    assert not one.sim_config(one.workload, observe_deadline=True).fifo_deadlines
    two = S.get_scenario("two-model-example")  # deadlines 0.1 and 0.2 s
    assert not two.sim_config().fifo_deadlines
    assert two.sim_config(emit_records=False).emit_records is False
