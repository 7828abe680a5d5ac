"""Run under 4 fake CPU devices: sharded logits and generation equal the single-device ones."""

import sys

import jax
import numpy as np

from jaxserve.models.opt import generate as gen
from jaxserve.models.opt.hf import load_hf_model
from jaxserve.models.opt.model import forward_jit
from jaxserve.models.opt.sharding import make_mesh, shard_params


def main(model_dir: str) -> None:
    """Compare 1-device vs 4-device-mesh logits and greedy tokens; exit non-zero on mismatch."""
    assert len(jax.devices()) == 4, jax.devices()
    config, params = load_hf_model(model_dir)
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, config.vocab_size, (2, 8))
    mask = np.ones_like(tokens)
    mask[1, :3] = 0
    single = np.asarray(forward_jit(jax.device_put(params, jax.devices()[0]), config, tokens, mask))
    sharded_params = shard_params(params, config, make_mesh(4))
    sharded = np.asarray(forward_jit(sharded_params, config, tokens, mask))
    diff = float(np.max(np.abs(single - sharded)))
    prompts = [list(tokens[0]), list(tokens[1, 3:])]
    same_tokens = np.array_equal(
        gen.generate(params, config, prompts, 8), gen.generate(sharded_params, config, prompts, 8)
    )
    spread = sharded_params["params"]["layers_0"]["fc1"]["kernel"].sharding.spec
    print(f"max_abs_diff={diff} same_tokens={same_tokens} fc1_spec={spread}")
    sys.exit(0 if diff <= 1e-5 and same_tokens else 1)


if __name__ == "__main__":
    main(sys.argv[1])
