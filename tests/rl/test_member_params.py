"""Per-member env params: one compiled population whose members train on different placements.

The toy: one task, two models with batch size 1 and 1 ms service, quality 0.5 (small) and
1.0 (big), miss penalty 1, at 1 request/s (an idle system at every decision), discount 0:
Q(small) = 0.5 and Q(big) = 1.0 with both models placed; with the big model given 0 active
replicas a request sent there is rejected, Q(big) = -1. So the member trained on the full
placement routes to big and the one without big routes to small, from one `jit(vmap)` call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.rl.config import DQNConfig, hparams_with
from jaxserve.rl.dqn import make_learner
from jaxserve.rl.envs import ServingAdapter
from jaxserve.rl.policy import make_q_policy
from jaxserve.rl.population import broadcast_hparams, member_keys, train_population
from jaxserve.sim.rollout import counter_rollout
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload

TOY = Scenario(
    name="placement-toy",
    model_names=("small", "big"),
    task_names=("t",),
    quality=((0.5, 1.0),),
    latency_s=((0.001,), (0.001,)),
    replicas=(1, 1),
    queue_capacity=(4, 4),
    deadline_s=(0.010,),
    miss_penalty=1.0,
)
TOY_DQN = DQNConfig(
    hidden=(16,),
    num_envs=8,
    episode_length=128,
    total_env_steps=8 * 128 * 12,
    episodes_per_chunk=6,
    learning_starts=256,
    batch_size=64,
    buffer_size=4096,
    eval_length=64,
    eval_episodes=1,
    eval_rate_factors=(0.001,),
    min_rate_factor=0.001,  # 1 request/s
    max_rate_factor=0.001,
    credit="completion",  # idle system: a request resolves within its own step
)
PLACEMENTS = ((1, 1), (1, 0))  # both models; small only


def member_params(adapter: ServingAdapter):
    """(2,) stacked SimParams: the scenario's with each placement's active replicas."""
    params = [adapter.params.replace(replicas=jnp.asarray(p, jnp.int32)) for p in PLACEMENTS]
    return jax.tree.map(lambda *x: jnp.stack(x), *params)


def routed(network, states, env_params, adapter: ServingAdapter) -> np.ndarray:
    """(2, K) requests each member's greedy policy routes per model, on its own placement."""
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=1.0), 1, 200)

    def one(member_params, sim_params):
        policy = make_q_policy(network, member_params)
        arrivals = generate(jax.random.key(3), wparams)
        env = adapter.eval_env
        return counter_rollout(env, policy, jax.random.key(4), sim_params, arrivals).num_routed

    return np.asarray(jax.jit(jax.vmap(one))(states.params, env_params))


def test_members_train_on_their_own_placements():
    adapter = ServingAdapter(TOY, TOY_DQN)
    learner = make_learner(adapter, TOY_DQN)
    env_params = member_params(adapter)
    hp = broadcast_hparams(hparams_with({"discount": 0.0, "learning_rate": 3e-3}), 2)
    states, metrics = train_population(learner, member_keys(0, 2), hp, env_params)
    np.testing.assert_array_equal(states.env_params.replicas, PLACEMENTS)
    num_routed = routed(learner.network, states, env_params, adapter)
    assert num_routed[0, 1] == 200, num_routed  # both placed: all to big (Q 1.0 vs 0.5)
    assert num_routed[1, 1] == 0, num_routed  # big absent: never routed there
    # Each member's periodic evaluation ran on its own placement: 1.0 vs 0.5 of the peak.
    np.testing.assert_allclose(metrics["eval_mean"][:, -1], [1.0, 0.5], atol=0.02)


def test_ordinary_runs_keep_the_scenario_and_no_extra_leaf():
    adapter = ServingAdapter(TOY, TOY_DQN)
    np.testing.assert_array_equal(adapter.params.replicas, TOY.replicas)
    learner = make_learner(adapter, TOY_DQN)
    state = jax.eval_shape(learner.init, jax.random.key(0))
    assert state.env_params is None  # no leaf added: checkpoints of ordinary runs unchanged
    with_params = jax.eval_shape(learner.init, jax.random.key(0), None, adapter.params)
    extra = len(jax.tree.leaves(with_params)) - len(jax.tree.leaves(state))
    assert extra == len(jax.tree.leaves(adapter.params))
