"""Most exciting inputs by batched gradient ascent under a contrast constraint.

In: a responder (a twin session or a virtual mouse, see :mod:`.objective`), the neurons to
serve (indices into its neuron table) and an :class:`~twinlab.mei.MEIConfig`. Out: an
``xarray.Dataset`` (see :func:`synthesize`) with one MEI per neuron, ``mei [neuron, frame,
y, x]`` luminance, its activation and the objective at every step.

The variable is each MEI's deviation from gray ``d = L - 0.5`` (``[B, 1, H, W]`` for images,
``[B, F, H, W]`` for videos); many neurons form one batch, each row driving its own neuron.
It starts as faint seeded noise (blurred like the gradient), and each step:

1. show every MEI shifted by its own random jitter (whole pixels, gray coming in at the
   edges), after ``gray_frames`` of gray; the objective is the mean response of the row's
   neuron over the scored stimulus frames;
2. the gradient with respect to ``d`` (an image's gradient is the sum over the frames it is
   held for) is blurred by a Gaussian (preconditioning: smooth directions first) and scaled
   to unit RMS per MEI;
3. ``d += lr_t * s * g`` with ``s`` the constraint's scale and ``lr_t`` a cosine decay from
   ``lr`` to ``lr * lr_end``;
4. projection: onto the sphere of RMS contrast ``norm`` exactly (``d *= target / ||d||``), or
   clipping to the luminance range.

Randomness (starting noise, jitter) comes from a counter-based hash of (seed, neuron index,
element), vectorized and the same on every device, so a neuron's MEI does not depend on
which neurons share its batch: batched and one-at-a-time synthesis agree.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError
from .config import MEIConfig
from .objective import Objective, as_objective

__all__ = ["synthesize", "present", "scored_response", "hash_normal", "hash_uniform", "project", "gaussian_blur",
           "shift", "energy_centroid_px"]

_M32 = 0xFFFFFFFF
_C = 0x45D9F3B  # < 2**27: products of 32-bit values stay inside int64


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mix (int64 tensors holding values in [0, 2**32))."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * _C) & _M32
    x = x ^ (x >> 16)
    x = (x * _C) & _M32
    return x ^ (x >> 16)


def _row_keys(seed: int, stream: int, neuron: torch.Tensor) -> torch.Tensor:
    base = _hash32(torch.tensor(int(seed) * 0x9E3779B1 + int(stream) * 0x85EBCA6B, dtype=torch.int64))
    return _hash32(base ^ _hash32(neuron.long() + 0x27D4EB2F))


def hash_uniform(seed: int, stream: int, neuron: torch.Tensor, n: int, offset: int = 0) -> torch.Tensor:
    """Uniforms in (0, 1), ``[len(neuron), n]`` (float64): element ``offset + j`` of each row's stream."""
    rows = _row_keys(seed, stream, neuron.to(torch.int64))[:, None]
    e = torch.arange(offset, offset + n, dtype=torch.int64, device=neuron.device)[None]
    h = _hash32(rows + _hash32(e * 2 + 1))
    return (h.double() + 0.5) / 2.0**32


def hash_normal(seed: int, stream: int, neuron: torch.Tensor, shape: Sequence[int],
                chunk: int = 1 << 22) -> torch.Tensor:
    """Standard normals ``[len(neuron), *shape]`` (float32) by Box-Muller on hashed uniforms."""
    n = int(np.prod(shape))
    out = torch.empty(len(neuron), n, dtype=torch.float32, device=neuron.device)
    step = max(1, chunk // max(len(neuron), 1))
    for s in range(0, n, step):
        m = min(step, n - s)
        u = hash_uniform(seed, stream, neuron, 2 * m, 2 * s)
        u1, u2 = u[:, 0::2], u[:, 1::2]
        out[:, s : s + m] = (torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).float()
    return out.view(len(neuron), *shape)


def _jitter_shifts(seed: int, neuron: torch.Tensor, step: int, jitter: int) -> torch.Tensor:
    """``[B, 2]`` whole-pixel shifts (dx, dy) in [-jitter, jitter] of each row at ``step``."""
    u = hash_uniform(seed, 1, neuron, 2, offset=2 * step)
    return (torch.floor(u * (2 * jitter + 1)) - jitter).to(torch.float32)


def shift(d: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Translate ``d [B, F, H, W]`` by whole pixels ``shifts [B, 2]`` (dx right, dy down); gray (0) enters."""
    b, f, h, w = d.shape
    theta = torch.zeros(b, 2, 3, dtype=d.dtype, device=d.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    # sampling position = output position - shift, in normalised units (2 / size per pixel)
    theta[:, 0, 2] = -2 * shifts[:, 0].to(d) / w
    theta[:, 1, 2] = -2 * shifts[:, 1].to(d) / h
    grid = F.affine_grid(theta, [b, f, h, w], align_corners=False)
    return F.grid_sample(d, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _kernel(sigma: float, device) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(g: torch.Tensor, sigma_px: float, sigma_frames: float = 0.0) -> torch.Tensor:
    """Separable Gaussian blur of ``g [B, F, H, W]`` over y, x (and frames), zero padded."""
    b, f, h, w = g.shape
    out = g
    if sigma_px > 0:
        k = _kernel(sigma_px, g.device)
        r = len(k) // 2
        x = out.reshape(b * f, 1, h, w)
        x = F.conv2d(F.pad(x, (r, r, 0, 0)), k.view(1, 1, 1, -1))
        x = F.conv2d(F.pad(x, (0, 0, r, r)), k.view(1, 1, -1, 1))
        out = x.view(b, f, h, w)
    if sigma_frames > 0 and f > 1:
        k = _kernel(sigma_frames, g.device)
        r = len(k) // 2
        x = out.permute(0, 2, 3, 1).reshape(-1, 1, f)
        x = F.conv1d(F.pad(x, (r, r)), k.view(1, 1, -1))
        out = x.view(b, h, w, f).permute(0, 3, 1, 2)
    return out


def project(d: torch.Tensor, config: MEIConfig) -> torch.Tensor:
    """Onto the constraint: RMS contrast exactly ``norm``, or luminance inside the range."""
    if config.constraint == "norm":
        target = 0.5 * config.norm * math.sqrt(d[0].numel())
        length = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        return d * (target / length).view(-1, *([1] * (d.dim() - 1)))
    return d.clamp(config.luminance_min - 0.5, config.luminance_max - 0.5)


def _scale(config: MEIConfig) -> float:
    """The size of an MEI's deviation from gray the step length is measured in."""
    if config.constraint == "norm":
        return 0.5 * config.norm
    return 0.25 * (config.luminance_max - config.luminance_min)


def present(stimulus: torch.Tensor, frames: int, gray_frames: int) -> torch.Tensor:
    """Deviation ``[B, 1 or F, H, W]`` -> luminance clips ``[B, gray + F, H, W]``: gray, then the stimulus
    (an image is held for ``frames`` frames)."""
    b, f, h, w = stimulus.shape
    body = stimulus.expand(b, frames, h, w) if f == 1 else stimulus
    if body.shape[1] != frames:
        raise InputError(f"a stimulus of {body.shape[1]} frames, the presentation asks for {frames}")
    gray = stimulus.new_zeros(b, gray_frames, h, w)
    return 0.5 + torch.cat([gray, body], 1)


def scored_response(rates: torch.Tensor, gray_frames: int, skip_frames: int) -> torch.Tensor:
    """``[B, T]`` responses of a presentation -> ``[B]`` mean over the scored stimulus frames."""
    return rates[:, gray_frames + skip_frames :].mean(1)


def _lr(config: MEIConfig, step: int) -> float:
    if config.steps <= 1:
        return config.lr
    p = step / (config.steps - 1)
    return config.lr * (config.lr_end + (1 - config.lr_end) * 0.5 * (1 + math.cos(math.pi * p)))


def _use_bf16(obj: Objective, config: MEIConfig, device: torch.device) -> bool:
    if config.amp == "auto":
        return device.type == "cuda" and obj.twin is not None
    return config.amp == "bf16"


def _ascend(obj: Objective, neuron: torch.Tensor, config: MEIConfig, n_frames: int, shape: tuple[int, int],
            bar, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch: -> (d [B, 1 or F, H, W], history [steps + 1, B], activation [B])."""
    f_var = 1 if config.kind == "image" else n_frames
    gray, skip = config.gray_frames, config.skip_frames
    dev = neuron.device.type

    def response(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=bf16):
            r = obj.rates(present(x, n_frames, gray), neuron)
        return scored_response(r.float(), gray, skip)

    t_sigma = config.blur_sigma_frames if config.kind == "video" else 0.0
    # small noise, not yet projected: the first step's gradient, not the noise, sets the MEI's
    # direction, and the projection after it brings the MEI onto the constraint. The noise is
    # drawn in the preconditioned space (blurred like the gradient), so that what survives of
    # it where the neuron does not look is as smooth as the steps.
    d = gaussian_blur(hash_normal(config.seed, 0, neuron, (f_var, *shape)), config.blur_sigma_px, t_sigma)
    d = d * (0.5 * config.init_std / d.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-20).view(-1, 1, 1, 1))
    if config.constraint == "range" or config.steps == 0:
        d = project(d, config)
    scale = _scale(config)
    history = torch.empty(config.steps + 1, len(neuron), dtype=torch.float64)
    for step in range(config.steps):
        d.requires_grad_(True)
        x = shift(d, _jitter_shifts(config.seed, neuron, step, config.jitter_px)) if config.jitter_px else d
        score = response(x)
        (g,) = torch.autograd.grad(score.sum(), d)
        history[step] = score.detach().double().cpu()
        with torch.no_grad():
            g = gaussian_blur(g, config.blur_sigma_px, t_sigma)
            rms = g.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-20).view(-1, 1, 1, 1)
            d = project(d.detach() + (_lr(config, step) * scale) * g / rms, config)
        bar.update(1)
    with torch.no_grad():
        act = response(d)
    history[config.steps] = act.double().cpu()
    return d.detach(), history, act.detach()


def _neuron_indices(obj: Objective, neurons) -> np.ndarray:
    if neurons is None:
        return np.arange(obj.n_neurons)
    idx = np.asarray(neurons).reshape(-1)
    if idx.dtype.kind not in "iu":
        raise InputError(f"neurons must be integer indices into the neuron table, got dtype {idx.dtype}")
    if len(idx) == 0:
        raise InputError("no neurons to synthesize MEIs for")
    if idx.min() < 0 or idx.max() >= obj.n_neurons:
        bad = idx[(idx < 0) | (idx >= obj.n_neurons)][0]
        raise InputError(f"neuron {bad} does not exist (the responder has neurons 0..{obj.n_neurons - 1})")
    return idx.astype(np.int64)


def synthesize(responder: Any, neurons: Sequence[int] | np.ndarray | None = None, config: MEIConfig = MEIConfig(),
               *, session: str | None = None, context_frames: int | None = None, progress: bool = True) -> xr.Dataset:
    """Most exciting images or videos of ``neurons`` (indices into the responder's neuron table).

    ``context_frames``: the longest presentation (gray + stimulus frames) the model serves
    (a twin: the clip length it was trained on, default 70; None for a virtual mouse: no
    limit). A longer presentation is refused before any work.

    Returns a Dataset with ``mei [neuron, frame, y, x]`` (luminance; one frame for images),
    ``activation [neuron]`` (the model's mean response over the scored frames of the final,
    unjittered MEI), ``history [step, neuron]`` (the objective before each step; the last
    row is ``activation``), ``rms_contrast``, ``out_of_range`` (fraction of pixels outside
    [0, 1]), ``rf_row_px`` / ``rf_col_px`` / ``rf_x_deg`` / ``rf_y_deg`` (where the model
    puts the neuron's RF centre), ``center_row_px`` / ``center_col_px`` (the MEI's
    contrast-energy centroid), the neuron table as coordinates, definitions in ``attrs``.
    """
    from ..scan import pick_device

    if not isinstance(config, MEIConfig):
        raise InputError(f"config must be an MEIConfig, got {type(config).__name__}")
    obj = as_objective(responder, session=session, context_frames=context_frames)
    idx = _neuron_indices(obj, neurons)
    n_frames = config.check_length(obj.context_frames)
    shape = (config.height, config.width) if config.height else obj.native_shape()
    device = pick_device(config.device)
    obj.to(device)
    bf16 = _use_bf16(obj, config, device)
    meis, hist, acts = [], [], []
    n_batches = math.ceil(len(idx) / config.batch_size)
    with obj.evaluating(), tqdm(total=n_batches * config.steps, unit="step", desc=f"{config.kind} MEIs",
                                disable=not progress) as bar:
        for s in range(0, len(idx), config.batch_size):
            neuron = torch.as_tensor(idx[s : s + config.batch_size], device=device)
            d, h, a = _ascend(obj, neuron, config, n_frames, shape, bar, bf16)
            meis.append((d + 0.5).float().cpu().numpy())
            hist.append(h.numpy())
            acts.append(a.double().cpu().numpy())
    mei = np.concatenate(meis)
    return _dataset(obj, idx, mei, np.concatenate(hist, 1), np.concatenate(acts), config, n_frames, shape, bf16)


def energy_centroid_px(mei: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``mei [N, F, H, W]`` luminance -> (row, col) centroid of the contrast energy ``(L - 0.5)^2``."""
    e = ((np.asarray(mei, dtype=np.float64) - 0.5) ** 2).sum(1)  # [N, H, W]
    total = e.sum((1, 2))
    rows = np.arange(e.shape[1])[None, :, None]
    cols = np.arange(e.shape[2])[None, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (e * rows).sum((1, 2)) / total, (e * cols).sum((1, 2)) / total


def _dataset(obj: Objective, idx: np.ndarray, mei: np.ndarray, history: np.ndarray, act: np.ndarray,
             config: MEIConfig, n_frames: int, shape: tuple[int, int], bf16: bool = False) -> xr.Dataset:
    c = 2 * mei - 1
    rms = np.sqrt((c.astype(np.float64) ** 2).reshape(len(c), -1).mean(1))
    out_of_range = ((mei < 0) | (mei > 1)).reshape(len(mei), -1).mean(1)
    rf_row, rf_col = obj.rf_centers_px(idx, shape)
    cen_row, cen_col = energy_centroid_px(mei)
    rf_x, rf_y = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    if obj.screen is not None:
        ok = np.isfinite(rf_row) & np.isfinite(rf_col)
        if ok.any():
            rf_x[ok], rf_y[ok] = obj.screen.px_to_deg(rf_row[ok], rf_col[ok], shape)
    table = obj.neurons.iloc[idx]
    coords: dict[str, Any] = {"neuron": idx, "frame": np.arange(mei.shape[1]), "y": np.arange(shape[0]),
                              "x": np.arange(shape[1]), "step": np.arange(history.shape[0])}
    for col in table.columns:
        vals = table[col].to_numpy()
        coords[str(col)] = ("neuron", vals.astype(str) if vals.dtype == object else vals)
    nv = ("neuron",)
    data = {
        "mei": (("neuron", "frame", "y", "x"), mei.astype(np.float32),
                {"units": "luminance (gray 0.5)", "definition": "the most exciting input of the neuron"}),
        "activation": (nv, act.astype(np.float64),
                       {"definition": "the model's mean response over the scored stimulus frames of the MEI"}),
        "history": (("step", "neuron"), history.astype(np.float64),
                    {"definition": "objective before each step (with that step's jitter); last row = activation"}),
        "rms_contrast": (nv, rms, {"definition": "sqrt(mean((2 L - 1)^2)) over the MEI's pixels and frames"}),
        "out_of_range": (nv, out_of_range,
                         {"definition": "fraction of the MEI's pixels with luminance outside [0, 1]"}),
        "rf_row_px": (nv, rf_row, {"definition": "row of the neuron's RF centre on the render grid (model's own)"}),
        "rf_col_px": (nv, rf_col, {"definition": "column of the neuron's RF centre on the render grid"}),
        "rf_x_deg": (nv, rf_x, {"units": "deg (Screen AE, x right)"}),
        "rf_y_deg": (nv, rf_y, {"units": "deg (Screen AE, y up)"}),
        "center_row_px": (nv, cen_row, {"definition": "row of the centroid of the MEI's contrast energy"}),
        "center_col_px": (nv, cen_col, {"definition": "column of the centroid of the MEI's contrast energy"}),
    }
    screen = obj.screen
    attrs = {
        "kind": config.kind,
        "responder": obj.describe(),
        "mei_config": config.to_json(),
        "frame_rate_hz": obj.frame_rate_hz,
        "stimulus_frames": int(n_frames),
        "gray_frames": int(config.gray_frames),
        "skip_frames": int(config.skip_frames),
        "context_frames": -1 if obj.context_frames is None else int(obj.context_frames),
        "amp": "bf16" if bf16 else "off",
        "height_px": int(shape[0]),
        "width_px": int(shape[1]),
        "objective": (f"mean expected response over stimulus frames {config.skip_frames}..{n_frames - 1} of a "
                      f"presentation of {config.gray_frames} gray frames then the stimulus"
                      + (" (the image held still)" if config.kind == "image" else "")
                      + "; behaviour at the responder's median"),
        "constraint": (f"RMS contrast about gray exactly {config.norm:g} (L2 norm of 2L-1 / sqrt(elements))"
                       if config.constraint == "norm" else
                       f"luminance within [{config.luminance_min:g}, {config.luminance_max:g}]"),
        "contrast_definition": "c = 2 L - 1 (luminance L in [0, 1], gray 0.5)",
    }
    if screen is not None:
        attrs["screen"] = json.dumps(screen.to_dict())
        attrs["deg_per_px"] = float(screen.deg_per_px(shape))
    return xr.Dataset(data, coords=coords, attrs=attrs)
