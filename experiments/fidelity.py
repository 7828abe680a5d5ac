"""Serving fidelity on cpu-demo: measured (real models, virtual clock) vs simulator-predicted.

The cpu-demo models are first re-profiled (same load as the runs that follow: the host is
shared, and its load moves service times by tens of percent), giving a scenario equal to
cpu-demo with fresh profiles. For a light, a medium, a critical (just past the large pair's
capacity, where greedy starts to spill) and an overloaded Poisson rate,
`jaxserve serve --fidelity` then runs the greedy router against the three models and the
simulator on the same workload draw, policy and seed; the prediction from the committed
profiles is recorded beside it. Writes docs/fidelity.json (table, machine load,
service-time ratios) and docs/figures/fidelity-<level>.png (time series, routing mixes).

    .venv/bin/python experiments/fidelity.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxserve.io_utils import write_json_atomic  # noqa: E402
from jaxserve.serving import ServeConfig  # noqa: E402
from jaxserve.serving.cpu import configure_cpu_threads  # noqa: E402
from jaxserve.serving.serve import serve  # noqa: E402
from jaxserve.sim.scenarios import get_scenario  # noqa: E402
from jaxserve.timing import describe_machine  # noqa: E402

TARGETS = {"availability": 0.05, "normalized_performance": 0.05}  # absolute
TARGET_P50_REL = 0.10
SENSITIVITY_FACTORS = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)
PROMPT_TOKENS = 32  # the cpu-demo profiles' request length


DEFAULT_POLICY = "checkpoints/cpu-demo-hard"  # the router shipped for cpu-demo


def get_config(quick: bool = False, policy: str = DEFAULT_POLICY) -> dict:
    """Rates as multiples of the (fresh) on-time capacities μ_k: light and medium (the large
    pair alone suffices), critical (just beyond it: greedy spills), overload (beyond all)."""
    return {
        "scenario": "cpu-demo",
        "policy": policy,
        "seed": 0,
        "rate_factors": {
            "light": ("large", 0.3),
            "medium": ("large", 0.8),
            "critical": ("large", 1.2),
            "overload": ("all", 1.5),
        },
        "num_requests": 300 if quick else 1500,
        "profile_repeats": 7 if quick else 15,
        "fresh_toml": Path(tempfile.mkdtemp(prefix="fidelity-")) / "cpu-demo-fresh.toml",
        "out_json": ROOT / "docs" / "fidelity.json",
        "figure_dir": ROOT / "docs" / "figures",
    }


def level_rates(config: dict) -> dict:
    """Arrival rate of each level from the fresh scenario's capacities."""
    mu = get_scenario(config["fresh_toml"]).capacity_per_model()
    base = {"large": mu[-1], "all": mu.sum()}
    return {
        level: round(float(base[which] * factor), 1)
        for level, (which, factor) in config["rate_factors"].items()
    }


def fresh_scenario(path: Path, repeats: int) -> dict:
    """Re-profile the cpu-demo models now (same load as the runs); write a scenario TOML
    equal to cpu-demo but with these profiles. Returns the fresh latency tables."""
    import jax

    from jaxserve.io_utils import write_text_atomic
    from jaxserve.models.opt.config import get_preset
    from jaxserve.models.opt.model import init_params
    from jaxserve.serving.profile import PROFILE_SEED, isotonic, profile_model
    from jaxserve.sim.scenarios import scenario_to_toml

    base = get_scenario("cpu-demo")
    latency = []
    for name, max_batch in zip(base.model_names, base.max_batch, strict=True):
        config = get_preset(name)
        params = init_params(config, jax.random.key(PROFILE_SEED))
        profile = profile_model(
            config, params, PROMPT_TOKENS, 0, range(1, max_batch + 1), repeats, 3, call="serve"
        )
        latency.append(tuple(isotonic(profile["latency_s"])))
    fresh = dataclasses.replace(base, name="cpu-demo-fresh", latency_s=tuple(latency))
    write_text_atomic(path, scenario_to_toml(fresh))
    return {name: list(lat) for name, lat in zip(base.model_names, latency, strict=True)}


def predict_with(config: dict, rate: float, latency=None, noise_sigma: float = 0.0) -> dict:
    """The simulator's prediction (same draw, seed, policy) from the committed cpu-demo
    profiles, or from the given latency tables (optionally with log-normal noise)."""
    from jaxserve.evaluation.simulate import simulate
    from jaxserve.sim.parse import parse_workload

    s = get_scenario("cpu-demo")
    if latency is not None:
        s = dataclasses.replace(s, latency_s=tuple(tuple(lat) for lat in latency))
    s = dataclasses.replace(s, noise_sigma=float(noise_sigma))
    workload = parse_workload(None, s.workload, rate)
    out = simulate(s, config["policy"], workload, config["num_requests"], config["seed"])
    keys = ("availability", "normalized_performance", "latency_p50_s", "latency_p99_s")
    return {**{k: out[k] for k in keys}, "routing_fraction": out["routing_fraction"]}


def served_latency(batches: dict, profile: dict) -> list[list[float]]:
    """Per model, the served run's median seconds per batch size; sizes it never ran take
    the profile times the model's mean measured/profile ratio; made non-decreasing."""
    from jaxserve.serving.profile import isotonic

    ratios = service_time_ratio(batches)
    out = []
    for model, rows in batches.items():
        if model == "log_sigma":
            continue
        scale = ratios[model] or 1.0
        lat = [
            rows[str(b)]["median_s"] if str(b) in rows else scale * p
            for b, p in enumerate(profile[model], 1)
        ]
        out.append(isotonic(lat))
    return out


def sensitivity(config: dict, rate: float, profile: dict) -> dict:
    """Predicted availability when every service time is the profile times f: how much a
    service-time error of a few percent moves the prediction at this rate."""
    out = {}
    for factor in SENSITIVITY_FACTORS:
        latency = [[factor * x for x in lat] for lat in profile.values()]
        out[str(factor)] = predict_with(config, rate, latency)["availability"]
    return out


def _serve_config(config: dict, rate: float, out: Path) -> ServeConfig:
    return ServeConfig(
        scenario=str(config["fresh_toml"]),
        rate=rate,
        seed=config["seed"],
        policy=config["policy"],
        num_requests=config["num_requests"],
        prompt_tokens=PROMPT_TOKENS,
        gen_tokens=4,
        quality="table",
        cpu_threads="1",
        fidelity=True,
        out=str(out),
        progress=False,
    )


def service_time_ratio(batches: dict) -> dict:
    """Per model: batch-count-weighted mean of measured median / profile latency."""
    out = {}
    for model, rows in batches.items():
        if model == "log_sigma":
            continue
        counts = np.array([r["count"] for r in rows.values()], float)
        ratios = np.array([r["median_s"] / r["profile_s"] for r in rows.values()])
        out[model] = float(counts @ ratios / counts.sum()) if counts.size else None
    return out


def summarise(level: str, rate: float, result: dict) -> dict:
    """One row of the fidelity table, with pass/fail against the targets."""
    f = result["fidelity"]
    row = {
        "level": level,
        "rate": rate,
        "num_requests": result["num_arrived"],
        "router_decision_us": result["router_decision_us"],
        "service_time_ratio": service_time_ratio(result["batches"]),
        "batches": result["batches"],
        "figure": result.get("figure"),
    }
    for key in (
        "availability",
        "normalized_performance",
        "latency_p50_s",
        "latency_p99_s",
        "drop_fraction",
        "reject_fraction",
    ):
        row[key] = {k: f[key].get(k) for k in ("predicted", "measured", "abs_diff", "rel_diff")}
    row["routing_fraction"] = f["routing_fraction"]
    row["within_target"] = {
        **{k: abs(f[k]["abs_diff"]) <= tol for k, tol in TARGETS.items()},
        "latency_p50_s": f["latency_p50_s"].get("rel_diff") is not None
        and abs(f["latency_p50_s"]["rel_diff"]) <= TARGET_P50_REL,
    }
    return row


def main(quick: bool = False, policy: str = DEFAULT_POLICY) -> dict:
    """Run the four levels; write docs/fidelity.json and the figures."""
    cpu_threads = configure_cpu_threads("1")  # before JAX starts: as the cpu-demo profiles
    config = get_config(quick, policy)
    load_before = os.getloadavg()
    fresh = fresh_scenario(config["fresh_toml"], config["profile_repeats"])
    config["rates"] = level_rates(config)
    rows = []
    for level, rate in config["rates"].items():
        if rows:  # re-profile right before each run: the host's load drifts
            fresh = fresh_scenario(config["fresh_toml"], config["profile_repeats"])
        print(
            f"{level}: fresh profiles (ms) "
            + "; ".join(f"{k} " + " ".join(f"{x * 1e3:.1f}" for x in v) for k, v in fresh.items()),
            flush=True,
        )
        out = config["figure_dir"] / f"fidelity-{level}.json"
        result = serve(_serve_config(config, rate, out))
        out.unlink()  # the per-request record stays out of docs/; the figure (.png) stays
        row = summarise(level, rate, result)
        row["fresh_profiles_s"] = fresh
        row["loadavg"] = os.getloadavg()
        row["predicted_from_committed_profile"] = predict_with(config, rate)
        row["predicted_from_served_medians"] = predict_with(
            config, rate, served_latency(result["batches"], fresh)
        )
        row["served_log_sigma"] = sigma = result["batches"]["log_sigma"] or 0.0
        row["predicted_from_served_medians_and_noise"] = predict_with(
            config, rate, served_latency(result["batches"], fresh), sigma
        )
        row["sensitivity"] = sensitivity(config, rate, fresh)
        rows.append(row)
        calibrated = row["predicted_from_served_medians"]
        print(
            f"{level:>8} simulator with the served run's batch medians: availability "
            f"{calibrated['availability']:.3f}, p50 {calibrated['latency_p50_s']:.3f}",
            flush=True,
        )
        print(
            f"{level:>8} rate {rate:>7}: "
            + ", ".join(
                f"{k} {row[k]['predicted']:.3f}/{row[k]['measured']:.3f}"
                for k in ("availability", "normalized_performance", "latency_p50_s")
            ),
            flush=True,
        )
    config["fresh_toml"].unlink()
    record = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in config.items()},
        "machine": describe_machine(),
        "cpu_threads": cpu_threads,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "targets": {**TARGETS, "latency_p50_rel": TARGET_P50_REL},
        "rows": rows,
    }
    write_json_atomic(config["out_json"], record)
    return record


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--policy",
        default=DEFAULT_POLICY,
        help="policy name or router checkpoint (default: the shipped one)",
    )
    cli = parser.parse_args()
    main(quick=cli.quick, policy=cli.policy)
