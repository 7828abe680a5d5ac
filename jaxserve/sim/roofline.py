"""Roofline latency model of OPT prompt scoring on one GPU, calibrated on measured timings.

One forward step over n tokens takes

    overhead_per_layer_s * num_layers
      + max(bytes / (hbm_bytes_per_s * mem_efficiency), flops / (peak_flops * compute_efficiency))

where bytes are the fp16 weights plus the KV written, and flops are the matmuls, the causal
attention scores and the LM head. A request is one *prompt-scoring* sequence of
`tokens_per_request` tokens (default 128, no generated tokens: the quality matrix is
lm-eval log-likelihood scoring, one prefill pass), so a batch of b requests is one prefill
step over b * tokens_per_request tokens. The three efficiency numbers are fitted by least
squares (`calibrate`) to the measured Llama-2-7B linear-layer timings in
`jaxserve/data/latency/` (see its README for the source). See docs/latency-model.md.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from pathlib import Path

import numpy as np
from scipy import optimize

from jaxserve.data import data_path
from jaxserve.errors import InputError

BYTES_PER_PARAM = 2  # fp16 / bf16 weights and KV
DEFAULT_TOKENS_PER_REQUEST = 128
OPT_VOCAB = 50272
POSITION_OFFSET = 2  # OPT's learned position table has max_positions + 2 rows
LATENCY_CSV = "latency/llama2_7b_linear_ms_vidur.csv"


@dataclasses.dataclass(frozen=True)
class OptDims:
    """The OPT config numbers the roofline needs (HF names: hidden_size, ffn_dim, ...)."""

    name: str
    hidden: int
    num_layers: int
    ffn: int
    num_heads: int
    embed: int  # word_embed_proj_dim; differs from hidden only for opt-350m
    vocab: int = OPT_VOCAB
    max_positions: int = 2048
    final_layer_norm: bool = True  # opt-350m (post-LN) has none


OPT_DIMS: dict[str, OptDims] = {
    d.name: d
    for d in (
        OptDims("opt-125m", 768, 12, 3072, 12, 768),
        OptDims("opt-350m", 1024, 24, 4096, 16, 512, final_layer_norm=False),
        OptDims("opt-1.3b", 2048, 24, 8192, 32, 2048),
        OptDims("opt-2.7b", 2560, 32, 10240, 32, 2560),
        OptDims("opt-6.7b", 4096, 32, 16384, 32, 4096),
        OptDims("opt-13b", 5120, 40, 20480, 40, 5120),
        OptDims("opt-30b", 7168, 48, 28672, 56, 7168),
        OptDims("opt-66b", 9216, 64, 36864, 72, 9216),
    )
}


@dataclasses.dataclass(frozen=True)
class Hardware:
    """One accelerator: HBM bandwidth, dense fp16 peak and memory size."""

    name: str
    hbm_bytes_per_s: float
    peak_flops: float
    memory_bytes: float
    calibration_column: str  # column of the latency CSV used to fit its efficiencies


A100_80GB = Hardware("a100", 2.039e12, 312e12, 80e9, "a100_ms")
H100_SXM = Hardware("h100", 3.35e12, 989e12, 80e9, "h100_ms")
# No H200 measurements: same compute die as the H100, so its H100 fit is reused.
H200 = Hardware("h200", 4.8e12, 989e12, 141e9, "h100_ms")
HARDWARE: dict[str, Hardware] = {h.name: h for h in (A100_80GB, H100_SXM, H200)}


@dataclasses.dataclass(frozen=True)
class Efficiency:
    """Fitted roofline factors: launch overhead per layer and achieved fractions of peak."""

    overhead_per_layer_s: float
    mem_efficiency: float
    compute_efficiency: float


@dataclasses.dataclass(frozen=True)
class StepCost:
    """Work of one forward step: bytes moved, flops, and layers (for the overhead)."""

    bytes: float
    flops: float
    num_layers: int


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Result of `calibrate`: fitted factors and the per-point fit."""

    hardware: str
    efficiency: Efficiency
    tokens: tuple[int, ...]
    measured_s: tuple[float, ...]
    predicted_s: tuple[float, ...]

    @property
    def rel_error(self) -> tuple[float, ...]:
        """(predicted - measured) / measured per calibration point."""
        return tuple(p / m - 1.0 for p, m in zip(self.predicted_s, self.measured_s, strict=True))

    @property
    def rms_rel_error(self) -> float:
        """Root-mean-square relative error of the fit."""
        return float(np.sqrt(np.mean(np.square(self.rel_error))))


def get_hardware(name: str) -> Hardware:
    """Hardware preset by name ('a100', 'h100', 'h200')."""
    if name not in HARDWARE:
        raise InputError(f"hardware = {name!r}: expected one of {sorted(HARDWARE)}")
    return HARDWARE[name]


def get_opt_dims(name: str) -> OptDims:
    """OPT dims by model name, e.g. 'opt-6.7b' (case-insensitive, 'facebook/' allowed)."""
    key = name.lower().removeprefix("facebook/")
    if key not in OPT_DIMS:
        raise InputError(f"model = {name!r}: expected one of {list(OPT_DIMS)}")
    return OPT_DIMS[key]


def layer_matmul_params(dims: OptDims) -> int:
    """Weights of the matmuls in all decoder layers (q, k, v, out, fc1, fc2)."""
    return dims.num_layers * (4 * dims.hidden**2 + 2 * dims.hidden * dims.ffn)


def opt_num_params(dims: OptDims) -> int:
    """Total parameter count of an OPT model (LM head tied to the token embedding)."""
    d, f = dims.hidden, dims.ffn
    per_layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d  # attn, fc1, fc2, 2 LNs
    embeddings = dims.vocab * dims.embed + (dims.max_positions + POSITION_OFFSET) * d
    projections = 2 * dims.embed * d if dims.embed != d else 0
    final_norm = 2 * d if dims.final_layer_norm else 0
    return dims.num_layers * per_layer + embeddings + projections + final_norm


def opt_scoring_cost(dims: OptDims, num_requests: int, tokens_per_request: int) -> StepCost:
    """Cost of one prefill step scoring `num_requests` sequences of `tokens_per_request`."""
    n = num_requests * tokens_per_request
    d, e = dims.hidden, dims.embed
    kv_bytes = BYTES_PER_PARAM * 2 * dims.num_layers * n * d  # K and V written per layer
    attn_flops = 2 * dims.num_layers * num_requests * tokens_per_request**2 * d  # causal QK, PV
    head_flops = 2 * dims.vocab * e * n + (4 * e * d * n if e != d else 0)
    flops = 2 * layer_matmul_params(dims) * n + attn_flops + head_flops
    return StepCost(BYTES_PER_PARAM * opt_num_params(dims) + kv_bytes, flops, dims.num_layers)


def llama2_7b_linear_cost(num_tokens: int) -> StepCost:
    """Cost of the operators in the calibration data: Llama-2-7B linear layers only."""
    hidden, ffn, layers = 4096, 11008, 32
    params = layers * (4 * hidden**2 + 3 * hidden * ffn)  # q, k, v, o + gate, up, down
    return StepCost(BYTES_PER_PARAM * params, 2.0 * params * num_tokens, layers)


def step_time_s(cost: StepCost, hardware: Hardware, eff: Efficiency) -> float:
    """Roofline time of one step: overhead + max(memory time, compute time)."""
    memory_s = cost.bytes / (hardware.hbm_bytes_per_s * eff.mem_efficiency)
    compute_s = cost.flops / (hardware.peak_flops * eff.compute_efficiency)
    return eff.overhead_per_layer_s * cost.num_layers + max(memory_s, compute_s)


def read_latency_csv(column: str, path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, seconds) of one column of the measured Llama-2-7B timing CSV."""
    path = path or data_path(LATENCY_CSV)
    if not path.is_file():
        raise InputError(f"latency csv = '{path}': expected an existing CSV file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or column not in rows[0]:
        raise InputError(f"latency csv '{path}' column = {column!r}: expected it in the header")
    tokens = np.array([int(r["tokens_in_step"]) for r in rows])
    return tokens, np.array([float(r[column]) * 1e-3 for r in rows])


def _efficiency_from_vector(x: np.ndarray) -> Efficiency:
    """Unpack the optimiser's vector (overhead in ms per layer, two fractions)."""
    return Efficiency(float(x[0]) * 1e-3, float(x[1]), float(x[2]))


def _log_residuals(x: np.ndarray, tokens: np.ndarray, measured_s: np.ndarray, hw: Hardware):
    """log(predicted / measured) per point: relative error, symmetric for over/under."""
    eff = _efficiency_from_vector(x)
    pred = [step_time_s(llama2_7b_linear_cost(int(n)), hw, eff) for n in tokens]
    return np.log(np.asarray(pred) / measured_s)


@functools.lru_cache(maxsize=8)
def calibrate(hardware: str = "a100", csv_path: str | None = None) -> Calibration:
    """Least-squares fit of the efficiency factors to the measured timings (relative error)."""
    hw = get_hardware(hardware)
    tokens, measured_s = read_latency_csv(hw.calibration_column, csv_path and Path(csv_path))
    fit = optimize.least_squares(
        _log_residuals,
        x0=np.array([0.05, 0.8, 0.6]),
        bounds=([0.0, 0.05, 0.05], [10.0, 1.0, 1.0]),
        args=(tokens, measured_s, hw),
    )
    eff = _efficiency_from_vector(fit.x)
    pred = tuple(step_time_s(llama2_7b_linear_cost(int(n)), hw, eff) for n in tokens)
    return Calibration(
        hw.name, eff, tuple(int(n) for n in tokens), tuple(float(m) for m in measured_s), pred
    )


def check_fits(dims: OptDims, hardware: Hardware, max_batch: int, tokens_per_request: int):
    """InputError if weights plus the KV of a full batch exceed the GPU memory."""
    need = opt_scoring_cost(dims, max_batch, tokens_per_request).bytes
    if need > hardware.memory_bytes:
        raise InputError(
            f"model = {dims.name!r} on {hardware.name}: needs {need / 1e9:.0f} GB for weights "
            f"and KV at batch {max_batch}; expected at most {hardware.memory_bytes / 1e9:.0f} GB "
            "(tensor parallelism is not modelled)"
        )


def latency_profile(
    model: str,
    max_batch: int,
    hardware: str = "a100",
    tokens_per_request: int = DEFAULT_TOKENS_PER_REQUEST,
    efficiency: Efficiency | None = None,
) -> tuple[float, ...]:
    """latency_s[b - 1] for b = 1..max_batch: one replica scoring b requests at once."""
    if max_batch < 1 or tokens_per_request < 1:
        raise InputError(
            f"max_batch, tokens_per_request = {max_batch}, {tokens_per_request}: expected ≥ 1"
        )
    dims, hw = get_opt_dims(model), get_hardware(hardware)
    check_fits(dims, hw, max_batch, tokens_per_request)
    eff = efficiency or calibrate(hardware).efficiency
    # Rounding to 0.1 µs is monotone, so the profile stays non-decreasing; keeps TOML short.
    return tuple(
        round(step_time_s(opt_scoring_cost(dims, b, tokens_per_request), hw, eff), 7)
        for b in range(1, max_batch + 1)
    )


def round_up(value: float, step: float) -> float:
    """Smallest multiple of `step` that is ≥ value (used to pick round deadlines)."""
    return round(math.ceil(value / step - 1e-9) * step, 10)
