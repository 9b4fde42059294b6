"""The virtual mouse: a responder whose true tuning is known.

In: a :class:`~twinlab.sim.config.MouseConfig` (or keyword overrides of it). Out: a
:class:`VirtualMouse`, the responder that stands in for an in-vivo recording:

* ``neurons``: the neuron table (``pandas.DataFrame``, one row per neuron; columns of the
  session format plus the ground truth, see :mod:`twinlab.sim.population`), with
  ``true_rf_monitor_x_deg`` / ``true_rf_monitor_y_deg``: where each RF centre lands on the
  monitor with the eye at rest, in the nominal screen's AE degrees (what dot mapping with
  the session's stimuli finds; NaN where it misses the monitor).
* ``screen``: the mouse's own monitor placement (distance and offset drawn about the
  nominal ``config.screen``); ``nominal_screen``: the latter; ``frame_rate_hz``.
* :meth:`rates` ``(frames [B, T, H, W], running_speed [B, T], pupil_diameter [B, T],
  pupil_center [B, T, 2]) -> [B, T, N]``: noiseless expected responses, causal and
  differentiable with respect to the frames (the responder interface shared with twins).
* :meth:`sample` ``(rates, generator=None, latent=None) -> [B, T, N]``: one noisy draw.
* :meth:`respond` ``(stimulus, behavior=None, repeats=1, seed=0)``: an xarray Dataset
  with ``rates [frame, neuron]`` and ``responses [repeat, frame, neuron]`` and the
  stimulus conditions attached (frames evaluated in causal chunks: bounded memory).
* :meth:`draw_behavior`, :meth:`draw_latent`: a session's behaviour and slow variability;
  :meth:`behavior_median`: the still, calm mouse :meth:`respond` assumes by default.

Noise (:class:`~twinlab.sim.config.NoiseConfig`): per frame and neuron a Poisson number of
events at rate ``rate * Z / size`` with ``Z`` a slow log-normal gain (shared latent factors
times a private wander, ``E[Z] = 1``) and ``size`` = ``event_size`` x the neuron's response
scale, each event's amplitude heavy-tailed (moment-matched log-normal sums, so a
``torch.Generator`` fixes every draw); then, as in a two-photon recording, the events are
summed per scan (6.5 Hz) and interpolated back to the 30-Hz frames. The responses' mean is
the noiseless rate low-passed by the scan, repeats differ, and a noise ceiling exists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from ..errors import InputError
from ..geometry import Screen
from .behavior import draw_behavior, neutral_behavior
from .config import MouseConfig
from .population import draw_population
from .responses import ResponseModel, ae_to_vec

__all__ = ["VirtualMouse", "place_monitor"]


def place_monitor(cfg: MouseConfig) -> Screen:
    """The mouse's own monitor: the nominal one moved by its placement spreads (seeded)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 0x5C4E]))
    sc = cfg.screen
    return dataclasses.replace(
        sc,
        distance_cm=float(max(0.5 * sc.distance_cm, sc.distance_cm + rng.normal(0, cfg.placement_distance_sd_cm))),
        center_x_cm=float(sc.center_x_cm + rng.normal(0, cfg.placement_offset_sd_cm[0])),
        center_y_cm=float(sc.center_y_cm + rng.normal(0, cfg.placement_offset_sd_cm[1])),
    )


class VirtualMouse(nn.Module):
    """A simulated mouse (see the module docstring). ``VirtualMouse(seed=3, n_neurons=200)``
    or ``VirtualMouse(MouseConfig(...))``; ``screen=`` fixes the monitor placement."""

    def __init__(self, config: MouseConfig | None = None, *, seed: int | None = None, n_neurons: int | None = None,
                 screen: Screen | None = None, mouse_id: str | None = None):
        super().__init__()
        cfg = config or MouseConfig()
        if seed is not None:
            cfg = dataclasses.replace(cfg, seed=int(seed))
        if n_neurons is not None:
            if int(n_neurons) < 1:
                raise InputError(f"a virtual mouse needs at least 1 neuron, got {n_neurons}")
            cfg = dataclasses.replace(cfg, population=dataclasses.replace(cfg.population, n_neurons=int(n_neurons)))
        cfg.validate()
        self.config = cfg
        self.mouse_id = mouse_id or f"sim{cfg.seed}"
        self.nominal_screen = cfg.screen
        self.screen = screen if screen is not None else place_monitor(cfg)
        self.frame_rate_hz = float(self.screen.frame_rate_hz)
        table = draw_population(cfg.population, cfg.seed, cfg.noise)
        mx, my = self._monitor_position(table)
        table["true_rf_monitor_x_deg"], table["true_rf_monitor_y_deg"] = mx, my
        self.model = ResponseModel(table, self.screen, cfg.response, cfg.behavior)
        # the TF drawn is the temporal filter's carrier; the truth is the TF it prefers
        table["true_tf_carrier_hz"] = table["true_tf_hz"]
        table["true_tf_hz"] = self.model.tf_peak_hz
        self.neurons = table
        k = cfg.noise.latent_factors
        cols = [f"true_latent_loading_{j}" for j in range(k)]
        load = table[cols].to_numpy(np.float64) if k else np.zeros((len(table), 0))
        self.register_buffer("loadings", torch.tensor(load, dtype=torch.float32))
        self.register_buffer("private_sd", torch.tensor(table["true_private_sd"].to_numpy(np.float64),
                                                        dtype=torch.float32))

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    def _monitor_position(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        v = ae_to_vec(torch.tensor(table["true_rf_x_deg"].to_numpy(np.float64)),
                      torch.tensor(table["true_rf_y_deg"].to_numpy(np.float64))).numpy()
        sc, nom = self.screen, self.nominal_screen
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cm = sc.distance_cm * v[:, 0] / v[:, 2] + sc.center_x_cm
            y_cm = sc.distance_cm * v[:, 1] / v[:, 2] + sc.center_y_cm
        on = (v[:, 2] > 0) & (np.abs(x_cm) <= sc.width_cm / 2) & (np.abs(y_cm) <= sc.height_cm / 2)
        x_cm, y_cm = np.where(on, x_cm, 0.0), np.where(on, y_cm, 0.0)
        mx, my = nom.cm_to_deg(x_cm, y_cm)
        return np.where(on, mx, np.nan), np.where(on, my, np.nan)

    # -- the responder interface ----------------------------------------------------------------

    def rates(self, frames: torch.Tensor, running_speed: torch.Tensor, pupil_diameter: torch.Tensor,
              pupil_center: torch.Tensor) -> torch.Tensor:
        """Noiseless expected responses ``[B, T, N]`` (per frame, non-negative, causal)."""
        if frames.ndim != 4:
            raise InputError(f"frames must be [B, T, H, W], got shape {tuple(frames.shape)}")
        B, T = frames.shape[:2]
        if tuple(running_speed.shape) != (B, T) or tuple(pupil_diameter.shape) != (B, T) \
                or tuple(pupil_center.shape) != (B, T, 2):
            raise InputError(f"behaviour must be running_speed/pupil_diameter [{B}, {T}] and pupil_center "
                             f"[{B}, {T}, 2], got {tuple(running_speed.shape)}, {tuple(pupil_diameter.shape)}, "
                             f"{tuple(pupil_center.shape)}")
        return self.model(frames, running_speed, pupil_diameter, pupil_center)

    forward = rates

    def draw_latent(self, batch: int, n_frames: int, generator: torch.Generator | None = None) -> "LatentState":
        """The slow variability of a showing: shared factors and each neuron's private gain."""
        nc = self.config.noise
        return LatentState.draw(batch, n_frames, self.frame_rate_hz, nc.latent_factors, nc.latent_tau_s,
                                self.n_neurons, self.private_sd.cpu(), nc.private_tau_s, generator)

    def sample(self, rates: torch.Tensor, generator: torch.Generator | None = None,
               latent: "LatentState | None" = None, start: int = 0) -> torch.Tensor:
        """One noisy draw ``[B, T, N]`` of responses around ``rates`` (see the module docstring).

        ``latent`` (from :meth:`draw_latent`, covering the whole showing) and ``start`` (the
        first frame of ``rates`` within it) continue a showing's slow variability; by default
        a fresh one is drawn for these frames. The events are then summed per scan and
        interpolated back to frames (:meth:`scan_resample`), so ``E[sample] = rates``
        low-passed by the scan (about 150 ms). ``start`` must be a scan boundary.
        """
        return self.scan_resample(self.draw_events(rates, generator, latent, start), start)

    def draw_events(self, rates: torch.Tensor, generator: torch.Generator | None = None,
                    latent: "LatentState | None" = None, start: int = 0) -> torch.Tensor:
        """Per-frame event amplitudes ``[B, T, N]`` before the scan, with ``E = rates``."""
        # draws happen where the generator lives (a CPU generator can drive a GPU mouse)
        dev = generator.device if generator is not None else rates.device
        rates = rates.detach().to(dev)
        B, T, N = rates.shape
        nc = self.config.noise
        if latent is None:
            latent, start = self.draw_latent(B, T, generator), 0
        logz = latent.log_gain(start, start + T, self.loadings.to(dev)).to(rates)
        rates = rates * torch.exp(logz)
        size = nc.event_size * self.model.scale.to(dev)  # [N]: mean event size in the neuron's units
        count = torch.poisson(rates.clamp(min=0) / size, generator=generator)
        mean = count * size
        if nc.amplitude_cv > 0:
            s2 = torch.log1p(nc.amplitude_cv**2 / count.clamp(min=1.0))
            eps = torch.randn(mean.shape, generator=generator, device=mean.device)
            mean = mean * torch.exp(torch.sqrt(s2) * eps - 0.5 * s2)
        return mean

    def scan_edges(self, start: int, stop: int) -> np.ndarray:
        """Frame boundaries (relative to ``start``) of the scans covering frames ``start..stop``.

        Scan ``j`` covers frames ``round(j P) .. round((j + 1) P) - 1`` of the showing,
        ``P = frame_rate / scan_hz``; ``start`` must be a scan boundary (or 0).
        """
        P = self.frame_rate_hz / self.config.noise.scan_hz
        j0 = int(round(start / P))
        j1 = int(np.ceil(stop / P)) + 1
        edges = np.rint(np.arange(j0, j1 + 1) * P).astype(np.int64) - int(start)
        edges = np.unique(np.clip(edges, 0, stop - start))
        return edges

    def scan_resample(self, events: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Events ``[B, T, N]`` of frames ``start..`` -> responses as a scanned recording has them.

        Each scan's value is its frames' mean; each frame takes the linear interpolation
        between the values at the scan centres (held flat past the first and last centre).
        ``events`` must begin at a scan boundary (:meth:`scan_edges`).
        """
        if self.config.noise.scan_hz <= 0:
            return events
        B, T, N = events.shape
        edges = torch.as_tensor(self.scan_edges(start, start + T), device=events.device)
        lo, hi = edges[:-1], edges[1:]
        cs = torch.cat([torch.zeros(B, 1, N, dtype=events.dtype, device=events.device), events.cumsum(1)], 1)
        vals = (cs[:, hi] - cs[:, lo]) / (hi - lo).to(events)[None, :, None]  # [B, scans, N]
        if len(lo) == 1:
            return vals[:, [0] * T]
        centres = (lo + hi - 1).double() / 2
        t = torch.arange(T, dtype=torch.float64, device=events.device)
        k = torch.searchsorted(centres, t, right=True).clamp(1, len(centres) - 1)
        c0, c1 = centres[k - 1], centres[k]
        w = ((t - c0) / (c1 - c0)).clamp(0, 1).to(events)[None, :, None]
        return vals[:, k - 1] * (1 - w) + vals[:, k] * w

    def behavior_median(self) -> dict:
        """Typical behaviour: still (the median treadmill speed is 0), pupil at its mean
        size, gaze at rest. What a scan uses when no behaviour is given."""
        return {"running_speed": 0.0, "pupil_diameter": float(self.config.behavior.pupil_mm),
                "pupil_center": (0.0, 0.0)}

    def draw_behavior(self, n_frames: int, seed: int = 0) -> xr.Dataset:
        """A session's behaviour for this mouse (:func:`twinlab.sim.behavior.draw_behavior`)."""
        return draw_behavior(self.config.behavior, n_frames, self.frame_rate_hz, seed)

    # -- streaming evaluation -------------------------------------------------------------------

    def stream_rates(self, frames: Any, behavior: xr.Dataset, chunk_frames: int = 2048,
                     device: str | torch.device | None = None):
        """Noiseless rates of one continuous showing, in chunks: yields ``(start, [n, N] float32 numpy)``.

        ``frames`` is anything indexable along its first axis (numpy, xarray, zarr): only one
        chunk plus the model's memory (``memory_frames``) is held at a time, and the result
        equals one call of :meth:`rates` on the whole showing.
        """
        n = len(frames)
        mem = self.model.memory_frames
        dev = torch.device(device) if device is not None else self.loadings.device
        speed = np.asarray(behavior["running_speed"].values, dtype=np.float32)
        pupil = np.asarray(behavior["pupil_diameter"].values, dtype=np.float32)
        center = np.asarray(behavior["pupil_center"].values, dtype=np.float32)
        if len(speed) != n:
            raise InputError(f"behaviour has {len(speed)} frames, the stimulus {n}")
        with torch.no_grad():
            for s in range(0, n, chunk_frames):
                e = min(n, s + chunk_frames)
                lo = max(0, s - mem)
                fr = np.asarray(frames[lo:e], dtype=np.float32)
                args = [torch.as_tensor(a[None], device=dev) for a in (fr, speed[lo:e], pupil[lo:e], center[lo:e])]
                r = self.rates(*args)[0, s - lo :]
                yield s, r.cpu().numpy()

    def respond(self, stimulus: xr.Dataset, behavior: xr.Dataset | str | None = None, repeats: int = 1,
                seed: int = 0, noise: bool = True, chunk_frames: int = 2048) -> xr.Dataset:
        """Show a Stimulus: noiseless ``rates [frame, neuron]`` and ``responses [repeat, frame, neuron]``.

        ``behavior``: None (a still, calm mouse looking straight ahead), ``"sample"`` (drawn
        anew for each repeat from ``seed``; rates then carry a ``repeat`` dim too), or a
        Dataset with ``running_speed``, ``pupil_diameter``, ``pupil_center`` along ``frame``
        (shared by the repeats). Frame coordinates of the stimulus (conditions) are kept.
        """
        if "frames" not in stimulus:
            raise InputError("respond: the stimulus has no 'frames' variable")
        if int(repeats) < 1:
            raise InputError(f"respond: repeats must be at least 1, got {repeats}")
        frames = stimulus["frames"]
        n = frames.sizes["frame"]
        if isinstance(behavior, str) and behavior != "sample":
            raise InputError(f"respond: behavior must be None, 'sample' or a Dataset, got {behavior!r}")
        per_repeat = isinstance(behavior, str)
        behaviors = [draw_behavior(self.config.behavior, n, self.frame_rate_hz, seed * 1000 + r)
                     for r in range(repeats)] if per_repeat else \
            [behavior if behavior is not None else neutral_behavior(n, self.config.behavior, self.frame_rate_hz)]
        values = frames.values
        rates = np.stack([_collect(self.stream_rates(values, b, chunk_frames), n, self.n_neurons) for b in behaviors])
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        if noise:
            resp = []
            for r in range(repeats):
                rr = torch.as_tensor(rates[r if per_repeat else 0][None])
                latent = self.draw_latent(1, n, gen)
                resp.append(self.sample(rr.to(self.loadings.device), gen, latent)[0].cpu().numpy())
            resp = np.stack(resp)
        coords = {k: v for k, v in stimulus.coords.items() if set(v.dims) <= {"frame"}}
        coords.update(_neuron_coords(self.neurons))
        coords["repeat"] = np.arange(repeats)
        data = {"rates": (("repeat", "frame", "neuron") if per_repeat else ("frame", "neuron"),
                          rates if per_repeat else rates[0], {"units": "expected response per frame"})}
        if noise:
            data["responses"] = (("repeat", "frame", "neuron"), resp.astype(np.float32),
                                 {"units": "deconvolved-calcium-like activity per frame"})
        for b_name in ("running_speed", "pupil_diameter"):
            if per_repeat:
                data[b_name] = (("repeat", "frame"), np.stack([b[b_name].values for b in behaviors]))
            else:
                data[b_name] = ("frame", behaviors[0][b_name].values)
        if per_repeat:
            data["pupil_center"] = (("repeat", "frame", "eye_axis"),
                                    np.stack([b["pupil_center"].values for b in behaviors]))
        else:
            data["pupil_center"] = (("frame", "eye_axis"), behaviors[0]["pupil_center"].values)
        coords["eye_axis"] = ["x", "y"]
        out = xr.Dataset(data, coords=coords)
        out.attrs.update({k: v for k, v in stimulus.attrs.items() if isinstance(v, (str, int, float))})
        out.attrs.update({"mouse_id": self.mouse_id, "mouse_screen": json.dumps(self.screen.to_dict()),
                          "frame_rate_hz": self.frame_rate_hz, "seed": int(seed),
                          "responder": "twinlab.sim.VirtualMouse"})
        return out


class LatentState:
    """Slow log-gain processes of one showing, held on a coarse time grid (``step`` frames)
    and linearly interpolated to frames on demand, so hours of them stay small.

    ``shared`` ``[B, Tc, F]`` unit-variance factors (loaded through each neuron's
    ``true_latent_loading_*``), ``private`` ``[B, Tc, N]`` (already scaled by each neuron's
    ``true_private_sd``; ``private_var`` ``[N]`` its square). ``log_gain`` subtracts half
    the variance, so the gain has mean 1.
    """

    def __init__(self, shared: torch.Tensor, private: torch.Tensor, step: int, private_var: torch.Tensor):
        self.shared, self.private, self.step = shared, private, int(step)
        self.private_var = torch.as_tensor(private_var, dtype=torch.float32)

    @staticmethod
    def _ar1(batch: int, steps: int, size: int, a: float, generator) -> torch.Tensor:
        """Unit-variance AR(1) ``[batch, steps, size]``: ``x_0 = e_0``, ``x_t = a x_(t-1) + s e_t``."""
        e = torch.randn(batch, steps, size, generator=generator).numpy()
        out = np.empty_like(e)
        out[:, 0] = e[:, 0]
        # the same float32 operations as the recursion written in torch, in numpy ufuncs
        # writing in place (a third of the time per step for hours of 0.1-s steps)
        a32, se = np.float32(a), e * np.float32(math.sqrt(max(1 - a * a, 0.0)))
        for t in range(1, steps):
            np.multiply(out[:, t - 1], a32, out=out[:, t])
            np.add(out[:, t], se[:, t], out=out[:, t])
        return torch.from_numpy(out)

    @classmethod
    def draw(cls, batch: int, n_frames: int, fps: float, factors: int, tau_s: float, n_neurons: int,
             private_sd: torch.Tensor | float, private_tau_s: float, generator=None) -> "LatentState":
        """``private_sd``: one s.d. per neuron ``[N]`` (or one for all)."""
        step = max(1, int(round(0.1 * min(tau_s, private_tau_s) * fps)))
        steps = n_frames // step + 2
        sd = torch.as_tensor(private_sd, dtype=torch.float32).cpu().expand(n_neurons)
        shared = cls._ar1(batch, steps, factors, math.exp(-step / (tau_s * fps)), generator) if factors else \
            torch.zeros(batch, steps, 0)
        on = bool((sd > 0).any())
        private = cls._ar1(batch, steps, n_neurons, math.exp(-step / (private_tau_s * fps)), generator) * sd \
            if on else torch.zeros(batch, steps, 0)
        return cls(shared, private, step, sd**2 if on else torch.zeros(0))

    def to(self, device: str | torch.device) -> "LatentState":
        """The same processes held on ``device`` (where :meth:`log_gain` then works)."""
        return LatentState(self.shared.to(device), self.private.to(device), self.step, self.private_var.to(device))

    def _interp(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        pos = torch.arange(start, stop, dtype=torch.float64, device=x.device) / self.step
        i0 = pos.floor().long().clamp(max=x.shape[1] - 2)
        w = (pos - i0).float()[None, :, None]
        return x[:, i0] * (1 - w) + x[:, i0 + 1] * w

    def log_gain(self, start: int, stop: int, loadings: torch.Tensor) -> torch.Tensor:
        """Log-gain ``[B, stop - start, N]`` (mean-corrected) for frames ``start:stop``."""
        B = self.shared.shape[0]
        N = loadings.shape[0]
        out = torch.zeros(B, stop - start, N, device=loadings.device)
        if self.shared.shape[-1]:
            out = out + self._interp(self.shared, start, stop).to(loadings.device) @ loadings.T
            out = out - 0.5 * (loadings**2).sum(1)
        if self.private.shape[-1]:
            out = out + self._interp(self.private, start, stop).to(loadings.device) \
                - 0.5 * self.private_var.to(loadings.device)
        return out


def _collect(chunks, n: int, k: int) -> np.ndarray:
    out = np.empty((n, k), dtype=np.float32)
    for s, r in chunks:
        out[s : s + len(r)] = r
    return out


def _neuron_coords(table: pd.DataFrame) -> dict:
    out = {}
    for c in table.columns:
        v = table[c].to_numpy()
        if v.dtype == object:
            v = v.astype(str)
        out[c] = ("neuron", v)
    out["neuron"] = np.arange(len(table))
    return out
