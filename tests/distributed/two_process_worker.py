"""One of the two processes of tests/distributed/test_two_processes.py (not a test itself).

    python two_process_worker.py PROCESS_ID PORT OUT_DIR

Joins a 2-process JAX runtime on CPU (coordinator 127.0.0.1:PORT, gloo collectives over
loopback, one CPU device per process), then runs through the public API exactly what the
test runs in one process: a sweep, and a population training with checkpoints under
OUT_DIR/run. Writes what it got to OUT_DIR/worker_PROCESS_ID.pkl and prints OK.
"""

from __future__ import annotations

import sys

import jax

NUM_PROCESSES = 2


def sweep_config():
    """3 policies x 3 rates x 1 seed = 9 lanes: 2 devices do not divide them (padding runs).

    (Configs are built in functions: importing jaxserve starts JAX, which must wait until
    `jax.distributed.initialize` has run.)
    """
    from jaxserve.evaluation import SweepConfig

    return SweepConfig(
        policies=("greedy", "static:2", "random"),
        rates=(40.0, 300.0, 900.0),
        num_requests=200,
        seeds=1,
    )


def train_config():
    """Two members with different discounts (one per process), 2 chunks of a tiny learner."""
    from jaxserve.evaluation import SearchSpace, TrainConfig
    from jaxserve.rl.config import DQNConfig

    tiny = DQNConfig(
        hidden=(8,),
        num_envs=2,
        episode_length=32,
        total_env_steps=2 * 32 * 2,
        buffer_size=512,
        batch_size=16,
        learning_starts=32,
        credit_window=16,
        eval_length=32,
        eval_episodes=1,
        eval_rate_factors=(0.5, 2.0),
    )
    return TrainConfig(dqn=tiny, search=SearchSpace(grid={"discount": [0.9, 0.97]}), seed=3)


def join(process_id: int, port: int) -> None:
    """Start this process's part of the 2-process runtime (before any other JAX call)."""
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_debug_key_reuse", True)  # as the test suite (tests/conftest.py)
    jax.config.update("jax_num_cpu_devices", 1)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # JAX 0.10's default
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=NUM_PROCESSES,
        process_id=process_id,
        coordinator_bind_address=f"127.0.0.1:{port}",  # default: every interface
        initialization_timeout=60,
        heartbeat_timeout_seconds=30,
        shutdown_timeout_seconds=30,
    )
    _gloo_on_loopback()


def _gloo_on_loopback() -> None:
    """Gloo's TCP pairs on 127.0.0.1, not on the address of the machine's hostname.

    JAX builds its gloo collectives without a hostname, so gloo listens on whatever the
    hostname resolves to; a test must stay on loopback. Re-registering the CPU backend
    factory (before the backend starts) with collectives bound to 127.0.0.1 does that.
    A real cluster skips this: there the processes are on different machines.
    """
    import functools

    from jax._src import distributed, xla_bridge
    from jax._src.lib import _jax

    collectives = _jax.make_gloo_tcp_collectives(
        distributed_client=distributed.global_state.client, hostname="127.0.0.1"
    )
    factory = functools.partial(xla_bridge.make_cpu_client, collectives=collectives)
    xla_bridge.register_backend_factory("cpu", factory, priority=0, fail_quietly=False)


def run(out_dir: str) -> dict:
    """The sweep and the training, as one process would run them; what each returned."""
    import numpy as np

    from jaxserve.evaluation import sweep, train
    from jaxserve.rl.policy import load_router_params
    from jaxserve.sim.devices import lane_devices

    devices = lane_devices()
    assert jax.process_count() == NUM_PROCESSES and len(jax.local_devices()) == 1
    assert {d.process_index for d in devices} == {0, 1}, devices  # lanes span both
    records = sweep(sweep_config())
    result = train(train_config(), out_dir=f"{out_dir}/run")
    restored, _ = load_router_params(f"{out_dir}/run", result.scenario, member=1)
    return {
        "process_index": jax.process_index(),
        "sweep": list(records),
        "history": list(result.history),
        "params": [np.asarray(x) for x in jax.tree.leaves(result.params)],
        "restored_member_1": [np.asarray(x) for x in jax.tree.leaves(restored)],
    }


def main(argv: list[str]) -> int:
    import pickle

    process_id, port, out_dir = int(argv[0]), int(argv[1]), argv[2]
    join(process_id, port)
    got = run(out_dir)
    with open(f"{out_dir}/worker_{process_id}.pkl", "wb") as f:
        pickle.dump(got, f)
    jax.distributed.shutdown()
    print("OK", process_id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
