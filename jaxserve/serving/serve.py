"""`jaxserve serve`: replay a workload against real Flax OPT models.

See docs/spec.md §7 and docs/serving.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable

import jax
import numpy as np

from jaxserve.argtypes import positive_int, seconds
from jaxserve.errors import InputError
from jaxserve.io_utils import write_json_or_print
from jaxserve.progress import no_progress, progress_bar
from jaxserve.serving.cpu import configure_cpu_threads
from jaxserve.serving.executor import MODES, ModelRunner, random_prompt
from jaxserve.serving.tasks import TaskSet, make_tokenizer, read_task_rows

# The simulator modules (env, router, report) are imported inside functions: importing
# jaxserve.sim.env initialises the JAX backend, which must wait for --cpu-threads.

CLOCKS = ("virtual", "wall")
QUALITY_MODES = ("auto", "table", "measured")
DEFAULT_PROMPT_TOKENS = 32  # the cpu-demo profiles' request length


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


def add_serve_arguments(p) -> None:
    """`jaxserve serve` flags (the workload ones are shared with simulate)."""
    p.add_argument(
        "--policy",
        default="greedy",
        help="static:K | static:MODEL | random | round-robin | jsq | greedy | lp | "
        "checkpoint directory",
    )
    p.add_argument("--num-requests", type=positive_int, default=500, help="arrivals to replay")
    p.add_argument("--clock", default="virtual", help="virtual | wall")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated, one per scenario model: OPT preset (random weights), "
        "HF directory or jaxserve OPT checkpoint (default: the scenario's "
        "model names as presets)",
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="task JSONL file or directory (default: the shipped sample set)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="local HF tokenizer directory (default: byte-level tokenizer)",
    )
    p.add_argument(
        "--prompt-tokens",
        type=positive_int,
        default=DEFAULT_PROMPT_TOKENS,
        help="tokens per prompt",
    )
    p.add_argument("--mode", default="score", help="score (first-token scoring) | generate")
    p.add_argument("--gen-tokens", type=int, default=4, help="generated tokens (--mode generate)")
    p.add_argument(
        "--quality",
        default="auto",
        help="auto | table | measured (auto: measured when every model has real "
        "weights from a directory)",
    )
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument(
        "--fidelity",
        action="store_true",
        help="also run the simulator on the same workload/policy/seed and report "
        "predicted vs measured",
    )
    p.add_argument("--window-s", type=seconds, default=None, help="window of windowed metrics")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--out",
        default=None,
        help="write results JSON here (and the fidelity figure beside it, .png)",
    )


def _check_args(args) -> None:
    checks = [
        ("--clock", args.clock, args.clock in CLOCKS, f"one of {list(CLOCKS)}"),
        ("--mode", args.mode, args.mode in MODES, f"one of {list(MODES)}"),
        ("--quality", args.quality, args.quality in QUALITY_MODES, f"one of {list(QUALITY_MODES)}"),
        ("--num-requests", args.num_requests, args.num_requests >= 1, "an int >= 1"),
        ("--prompt-tokens", args.prompt_tokens, args.prompt_tokens >= 2, "an int >= 2"),
        ("--gen-tokens", args.gen_tokens, args.gen_tokens >= 1, "an int >= 1"),
        (
            "--window-s",
            args.window_s,
            args.window_s is None or args.window_s > 0,
            "a positive number of seconds",
        ),
    ]
    for flag, value, ok, expected in checks:
        if not ok:
            raise InputError(f"{flag} = {value!r}: expected {expected}")


def _model_sources(args, scenario) -> list[str]:
    if args.models is None:
        return list(scenario.model_names)
    sources = [m.strip() for m in args.models.split(",")]
    if len(sources) != scenario.num_models:
        raise InputError(
            f"--models = {args.models!r}: {len(sources)} models, expected "
            f"{scenario.num_models} (one per model of scenario {scenario.name!r})"
        )
    return sources


def _replica_devices(num_replicas: int, first: int, clock: str) -> list:
    """Device of each replica: round-robin over local devices (wall); one default (virtual)."""
    if clock == "virtual":
        return [None]
    devices = jax.local_devices()
    return [devices[(first + r) % len(devices)] for r in range(num_replicas)]


def load_runners(args, scenario, max_token: int) -> tuple[list, bool]:
    """Per model the runners (one per replica for the wall clock); real weights for all?"""
    from jaxserve.serving.profile import load_model

    runners, all_real, first = [], True, 0
    for k, source in enumerate(_model_sources(args, scenario)):
        config, params = load_model(source, args.dtype)
        all_real &= pathlib.Path(source).is_dir()
        if max_token >= config.vocab_size:
            raise InputError(
                f"--models {source!r}: vocab_size {config.vocab_size} <= token id "
                f"{max_token} of the task set's tokenizer; expected a larger "
                "vocabulary or another --tokenizer"
            )
        devices = _replica_devices(scenario.replicas[k], first, args.clock)
        first += scenario.replicas[k]
        runners.append(
            [
                ModelRunner(config, params, args.prompt_tokens, args.mode, args.gen_tokens, device)
                for device in devices
            ]
        )
    return runners, all_real


def build_setup(args) -> Setup:
    """Validate every input and load models, tasks and the workload draw."""
    from jaxserve.evaluation.simulate import resolve_policy
    from jaxserve.sim.env import ServingEnv
    from jaxserve.sim.parse import episode_length, parse_workload
    from jaxserve.sim.scenarios import get_scenario
    from jaxserve.sim.workloads import make_workload

    _check_args(args)
    scenario = get_scenario(args.scenario)
    workload = parse_workload(args.workload, scenario.workload, args.rate)
    n = episode_length(workload, args.num_requests)
    policy = resolve_policy(args.policy, ServingEnv(scenario.sim_config()), scenario)
    tokenizer = make_tokenizer(args.tokenizer)
    task_set = TaskSet(
        read_task_rows(args.tasks),
        scenario.task_names,
        tokenizer,
        args.prompt_tokens,
        seed=args.seed,
    )
    runners, all_real = load_runners(args, scenario, task_set.max_token)
    wparams, generate = make_workload(workload, scenario.num_tasks, n)
    key_workload, key_run = jax.random.split(jax.random.key(args.seed))  # as evaluation.simulate
    measured = args.quality == "measured" or (args.quality == "auto" and all_real)
    return Setup(
        scenario,
        workload,
        policy,
        args.policy,
        runners,
        task_set,
        jax.jit(generate)(key_workload, wparams),
        key_run,
        measured,
        _model_sources(args, scenario),
    )


def warm_up(setup: Setup, router, models) -> dict:
    """Compile every batch size of every model and the router before the clock starts."""
    seconds = {}
    for k, replicas in enumerate(setup.runners):
        prompt = random_prompt(replicas[0].config, replicas[0].prompt_tokens)
        for runner in replicas:
            seconds[setup.scenario.model_names[k]] = sum(
                runner.warmup(setup.scenario.max_batch[k], prompt)
            )
    seconds["router"] = router.warmup(models)
    return seconds


@contextlib.contextmanager
def stop_on_sigint(stop: threading.Event):
    """SIGINT sets `stop` (checked between arrivals) instead of raising mid-batch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _log(message: str) -> None:
    print(f"jaxserve serve: {message}", file=sys.stderr, flush=True)


def serve(
    args, stop: threading.Event | None = None, on_arrival: Callable[[int], None] = no_progress
) -> dict:
    """Run `jaxserve serve`; returns (and writes with --out) the results record.

    `on_arrival(1)` is called after each routed arrival, e.g. to set `stop` after N of them.
    """
    cpu_threads = configure_cpu_threads(getattr(args, "cpu_threads", "all"))
    from jaxserve.serving.router import Router
    from jaxserve.sim.env import ServingEnv

    setup = build_setup(args)
    stop = stop or threading.Event()
    s = setup.scenario
    env = ServingEnv(s.sim_config(setup.workload))
    arrival_s = np.cumsum(np.asarray(setup.arrivals.gap_s, np.float64))
    tasks = np.asarray(setup.arrivals.task)
    valid = np.asarray(setup.arrivals.valid)
    arrival_s, tasks = arrival_s[valid], tasks[valid]
    scale = setup.arrivals.deadline_scale  # per-request deadline factors, as the simulators
    scale = None if scale is None else np.asarray(scale)[valid]
    router = Router(setup.policy, env, s.sim_params(), setup.arrivals, setup.key_run)
    engine = _make_engine(args.clock, s, setup)
    compile_s = warm_up(setup, router, engine.models)
    _log(
        f"{len(arrival_s)} requests, clock {args.clock}, policy {args.policy}; "
        f"warm-up {sum(compile_s.values()):.1f} s"
    )
    start = time.perf_counter()
    enabled = not getattr(args, "no_progress", False)
    with stop_on_sigint(stop), progress_bar(len(arrival_s), "serve", "req", enabled) as bar:
        arrived = lambda n: (bar.update(n), on_arrival(n))
        requests = _run(
            args.clock, engine, router, (arrival_s, tasks, scale), setup.task_set, stop, arrived
        )
    wall_s = time.perf_counter() - start
    result = _result(args, setup, engine, router, requests, arrival_s, tasks, wall_s, stop)
    result["warmup_s"] = compile_s
    result["cpu_threads"] = cpu_threads
    if args.fidelity and not stop.is_set():
        _add_fidelity(args, setup, result)
    if args.out:
        write_json_or_print(args.out, result)
    return result


def _make_engine(clock: str, scenario, setup: Setup):
    if clock == "wall":
        from jaxserve.serving.wall import WallEngine

        return WallEngine(
            scenario.sim_config(), scenario.sim_params(), setup.runners, setup.measured_quality
        )
    from jaxserve.serving.engine import VirtualEngine

    return VirtualEngine(
        scenario.sim_config(),
        scenario.sim_params(),
        [replicas[0] for replicas in setup.runners],
        setup.measured_quality,
    )


def _run(clock, engine, router, workload, task_set, stop, on_arrival):
    """Serve `workload` = (arrival_s, tasks, deadline_scale) on the wall or virtual clock."""
    from jaxserve.serving.engine import run_virtual
    from jaxserve.serving.wall import run_wall

    arrival_s, tasks, scale = workload
    run = run_wall if clock == "wall" else run_virtual
    return run(engine, router, arrival_s, tasks, task_set, stop, on_arrival, deadline_scale=scale)


def _window_s(args, arrival_s) -> float:
    if args.window_s:
        return float(args.window_s)
    span = float(arrival_s[-1] - arrival_s[0]) if len(arrival_s) > 1 else 1.0
    return max(span / 20.0, 1e-3)


def _result(args, setup, engine, router, requests, arrival_s, tasks, wall_s, stop) -> dict:
    """Results record: conservation, metrics, per-request ledger, batches, router overhead."""
    from jaxserve.serving import report

    s = setup.scenario
    num_arrived = len(requests)
    ledger = report.ledger_from_requests(requests, len(arrival_s))
    resolved = ledger["outcome"] >= 0
    result = {
        "scenario": s.name,
        "policy": setup.policy_name,
        "workload": setup.workload.kind,
        "seed": args.seed,
        "clock": args.clock,
        "mode": args.mode,
        "quality_source": "measured" if setup.measured_quality else "table",
        "models": setup.model_sources,
        "model_names": list(s.model_names),
        "prompt_tokens": args.prompt_tokens,
        "num_requests": int(len(arrival_s)),
        "interrupted": stop.is_set(),
        "wall_s": wall_s,
        "router_decision_us": router.overhead_summary(),
        **report.conservation(ledger, num_arrived),
    }
    if resolved.any():
        result["metrics"] = report.run_metrics(
            ledger,
            arrival_s,
            tasks,
            s.quality,
            s.num_models + int(s.allow_reject),
            _window_s(args, arrival_s),
            resolved,
        )
    result["accuracy"] = _accuracy(ledger, tasks, s)
    result["batches"] = _batch_summary(engine, s)
    result["requests"] = {k: v[:num_arrived].tolist() for k, v in ledger.items()}
    result["requests"]["arrival_s"] = arrival_s[:num_arrived].tolist()
    result["requests"]["task"] = tasks[:num_arrived].tolist()
    return result


def _accuracy(ledger, tasks, scenario) -> dict:
    """Measured correctness of answered requests per task and model."""
    out = {}
    answered = ledger["answer"] != -2
    for t, task in enumerate(scenario.task_names):
        row = {}
        for k, model in enumerate(scenario.model_names):
            mine = answered & (tasks == t) & (ledger["model"] == k)
            row[model] = float(ledger["correct"][mine].mean()) if mine.any() else None
        out[task] = row
    return out


def _batch_summary(engine, scenario) -> dict:
    """Per model and batch size: count, median/p10/p90 measured seconds vs the profile."""
    out = {}
    for k, name in enumerate(scenario.model_names):
        rows = {}
        for b in range(1, scenario.max_batch[k] + 1):
            secs = [x.service_s for x in engine.batches if x.model == k and x.size == b]
            if secs:
                rows[str(b)] = {
                    "count": len(secs),
                    "median_s": float(np.median(secs)),
                    "p10_s": float(np.percentile(secs, 10)),
                    "p90_s": float(np.percentile(secs, 90)),
                    "profile_s": scenario.latency_s[k][b - 1],
                }
        out[name] = rows
    out["log_sigma"] = _log_sigma(engine)
    return out


def _log_sigma(engine) -> float | None:
    """Std of log(service time / median of its model and batch size), over all batches:
    the log-normal noise sigma (docs/spec.md §3.3) that the measured service times show."""
    groups: dict = {}
    for x in engine.batches:
        groups.setdefault((x.model, x.size), []).append(x.service_s)
    logs = [np.log(np.asarray(v) / np.median(v)) for v in groups.values() if len(v) > 1]
    return float(np.std(np.concatenate(logs))) if logs else None


def _add_fidelity(args, setup: Setup, result: dict) -> None:
    """Simulator prediction for the same run, the comparison, and the figure (with --out)."""
    from jaxserve.serving import report

    arrival_s = np.asarray(result["requests"]["arrival_s"])
    predicted = report.predict(
        setup.scenario, setup.policy, setup.arrivals, setup.key_run, _window_s(args, arrival_s)
    )
    result["predicted"] = predicted
    result["fidelity"] = report.compare(predicted, result["metrics"])
    if args.out:
        figure = pathlib.Path(args.out).with_suffix(".png")
        report.plot_fidelity(
            predicted,
            result["metrics"],
            figure,
            f"{setup.scenario.name} {setup.policy_name} "
            f"{setup.workload.kind} rate {setup.workload.rate:g}",
            setup.scenario.model_names,
        )
        result["figure"] = str(figure)


def format_serve(result: dict) -> str:
    """Human-readable summary of a served run (and its fidelity report)."""
    lines = [
        f"scenario {result['scenario']}  policy {result['policy']}  clock {result['clock']}"
        f"  quality {result['quality_source']}  seed {result['seed']}"
        + ("  (INTERRUPTED: partial results)" if result["interrupted"] else "")
    ]
    counts = (
        "num_arrived",
        "num_on_time",
        "num_late",
        "num_dropped",
        "num_rejected",
        "num_unfinished",
    )
    lines.append("  " + "  ".join(f"{k[4:]} {result[k]}" for k in counts))
    metrics = result.get("metrics", {})
    for key in ("availability", "normalized_performance", "latency_p50_s", "latency_p99_s"):
        if metrics.get(key) is not None:
            lines.append(f"  {key:<26} {metrics[key]:.4f}")
    d = result["router_decision_us"]
    if "p50_us" in d:
        lines.append(
            f"  router decision            p50 {d['p50_us']:.0f} us, "
            f"p99 {d['p99_us']:.0f} us over {d['num_decisions']}"
        )
    for key, row in result.get("fidelity", {}).items():
        if key != "routing_fraction" and row.get("abs_diff") is not None:
            lines.append(
                f"  fidelity {key:<22} predicted {row['predicted']:.4f}  "
                f"measured {row['measured']:.4f}  diff {row['abs_diff']:+.4f}"
            )
    return "\n".join(lines)
