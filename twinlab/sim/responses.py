"""The ground-truth response model of a virtual mouse, in torch (differentiable in the frames).

In: frames ``[B, T, H, W]`` (luminance in [0, 1], gray 0.5, any render size), running speed
``[B, T]`` (cm/s), pupil diameter ``[B, T]`` (mm), pupil centre ``[B, T, 2]`` (degrees of
eye rotation). Out: noiseless, non-negative, causal expected responses ``[B, T, N]`` per
frame.

Stages (each vectorized over neurons; space and time separated so the cost is one matmul):

1. **Eye.** Every frame is resampled onto a fixed eye-centred *retina* grid (AE degrees
   about the eye's resting axis, ``retina_deg_per_px``) by following each retina pixel's
   line of sight, rotated by the gaze (the minimal rotation taking the resting axis to the
   pupil-centre direction), to the mouse's own monitor plane (its :class:`Screen`: distance
   and offset), then to the frame's pixel (bilinear, ``grid_sample``); off the monitor is
   gray. This is the geometry a twin's perspective module must invert. Frames finer than
   the retina are area-averaged first (anti-aliasing).
2. **Space.** Contrast ``c = 2 L - 1`` is projected on each neuron's complex Gabor
   ``w = env(u, v) (exp(i (2 pi f a + phase)) - exp(i phase) exp(-(2 pi f sigma)^2 / 2))``
   (zero-mean, Morlet-style: no response to uniform light) drawn in AE degrees about the RF centre
   (like the stimulus library's Gabors; ``a`` along the preferred direction), supersampled
   within pixels and scaled so a full-contrast optimal grating gives ``|z| = 1``:
   ``z = c @ S`` with ``S`` ``[P, 2N]``. The same frames' contrast energy ``c^2``, pooled on
   a coarse grid, feeds each neuron's normalization pool and surround (``E = c^2 @ Q``).
3. **Time.** ``z`` is filtered causally with ``h(t) = g(t) (cos w0 t + i d sin w0 t)``
   (``g`` a gamma envelope after a fixed latency, ``w0`` the preferred TF, ``d`` the DS
   strength): ``d = 1`` passes only motion along the preferred direction (spatiotemporally
   oriented), ``d = 0`` both. One grouped ``conv1d``.
   Contrast gain control acts on that filter's input: ``z`` is divided by ``sqrt(1 + E)``
   (``E`` the pool's energy, low-passed over ``norm_tau_s``, in units of ``c50^2``; the
   surround's energy adds ``w_s`` at full contrast), so responses saturate with contrast
   and a vanishing stimulus leaves no rebound.
4. **Nonlinearity.** ``drive = (1 - m) relu(Re y)^2 + m |y|^2`` (``m`` complexity:
   simple ... complex energy), times ``1 + 0.5 / c50^2`` (so the optimal full-contrast
   grating keeps its drive), raised to ``q / 2`` (``q`` the neuron's exponent) and scaled
   by the neuron's gain (set so its mean response to a reference natural-like movie is its
   ``true_reference_rate``); then ``rate = scale * exp(g_run run_level(speed) + g_pupil
   z_pupil) * (response + baseline)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import Screen
from .behavior import run_level
from .config import BehaviorConfig, ResponseConfig

__all__ = ["ResponseModel", "ae_to_vec", "vec_to_ae", "gaze_rotation", "monitor_grid", "reference_movie"]

_SURROUND_SCALE = 1.0 / 0.5  # surround term = w_s at the energy of a full-contrast grating (0.5)


def ae_to_vec(x_deg: torch.Tensor, y_deg: torch.Tensor) -> torch.Tensor:
    """AE degrees about +z -> unit vectors ``[..., 3]``."""
    rho = torch.deg2rad(torch.hypot(x_deg, y_deg))
    phi = torch.atan2(y_deg, x_deg)
    s = torch.sin(rho)
    return torch.stack([s * torch.cos(phi), s * torch.sin(phi), torch.cos(rho)], dim=-1)


def vec_to_ae(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors ``[..., 3]`` -> AE degrees (x, y) about +z."""
    rho = torch.rad2deg(torch.atan2(torch.hypot(v[..., 0], v[..., 1]), v[..., 2]))
    phi = torch.atan2(v[..., 1], v[..., 0])
    return rho * torch.cos(phi), rho * torch.sin(phi)


def gaze_rotation(x_deg: torch.Tensor, y_deg: torch.Tensor) -> torch.Tensor:
    """The minimal rotation ``[..., 3, 3]`` taking +z to the direction at AE ``(x, y)``."""
    rho = torch.deg2rad(torch.hypot(x_deg, y_deg))
    phi = torch.atan2(y_deg, x_deg)
    kx, ky = -torch.sin(phi), torch.cos(phi)  # unit axis z x g (its length is sin rho)
    s, c1 = torch.sin(rho), 1 - torch.cos(rho)
    zero = torch.zeros_like(rho)
    # Rodrigues: I + sin(rho) K + (1 - cos(rho)) K^2 with K the cross-product matrix of (kx, ky, 0)
    k = torch.stack([torch.stack([zero, zero, ky], -1), torch.stack([zero, zero, -kx], -1),
                     torch.stack([-ky, kx, zero], -1)], -2)
    eye = torch.eye(3, dtype=rho.dtype, device=rho.device).expand(k.shape)
    return eye + s[..., None, None] * k + c1[..., None, None] * (k @ k)


def monitor_grid(vectors: torch.Tensor, screen: Screen) -> torch.Tensor:
    """Lines of sight ``[..., 3]`` (head frame, z toward the monitor's perpendicular foot) ->
    ``grid_sample`` coordinates ``[..., 2]`` on a frame of that monitor (outside: beyond 1)."""
    return _grid_from_xyz(vectors[..., 0], vectors[..., 1], vectors[..., 2], screen)


def _grid_from_xyz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, screen: Screen) -> torch.Tensor:
    # lines of sight that miss the monitor plane (z <= 0) are sent far outside the frame
    behind = z <= 1e-3
    inv = 1.0 / torch.where(behind, torch.ones_like(z), z)
    gx = (x * inv * screen.distance_cm + screen.center_x_cm) * (2.0 / screen.width_cm)
    gy = (y * inv * screen.distance_cm + screen.center_y_cm) * (-2.0 / screen.height_cm)
    gx = gx.masked_fill(behind, 4.0)
    return torch.stack([gx, gy], dim=-1)


def _rotation_to_axis(x_deg: torch.Tensor, y_deg: torch.Tensor) -> torch.Tensor:
    """Minimal rotation taking the direction at AE ``(x, y)`` onto +z (the transpose)."""
    return gaze_rotation(x_deg, y_deg).transpose(-1, -2)


class ResponseModel(nn.Module):
    """Ground-truth responses of a neuron table on a monitor (see the module docstring).

    Parameters
    ----------
    neurons : DataFrame
        The table drawn by :func:`twinlab.sim.population.draw_population`.
    screen : Screen
        The mouse's own monitor placement (and frame rate).
    response, behavior : configs
        Model settings; ``behavior`` gives the pupil reference (mean, s.d.) and the eye's
        range, which sets how much of the visual field the retina grid covers.
    """

    def __init__(self, neurons: pd.DataFrame, screen: Screen, response: ResponseConfig | None = None,
                 behavior: BehaviorConfig | None = None):
        super().__init__()
        self.cfg = response or ResponseConfig()
        bcfg = behavior or BehaviorConfig()
        self.screen = screen
        self.frame_rate_hz = float(screen.frame_rate_hz)
        self.n_neurons = len(neurons)
        self.pupil_ref = (float(bcfg.pupil_mm), float(max(bcfg.pupil_sd_mm, 1e-3)))
        dd = torch.float64  # build in double, store in single

        def col(name):
            return torch.tensor(neurons[name].to_numpy(dtype=np.float64), dtype=dd)

        rf_x, rf_y, sigma = col("true_rf_x_deg"), col("true_rf_y_deg"), col("true_sigma_deg")
        aspect = col("true_aspect")
        xs, ys, self.retina_shape = self._retina_axes(rf_x, rf_y, sigma * torch.clamp(aspect, min=1.0), bcfg)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("retina_vectors", ae_to_vec(gx, gy).reshape(-1, 3).float())
        sc = screen
        self.register_buffer("monitor_matrix", torch.tensor(
            [[2 * sc.distance_cm / sc.width_cm, 0.0, 2 * sc.center_x_cm / sc.width_cm],
             [0.0, -2 * sc.distance_cm / sc.height_cm, -2 * sc.center_y_cm / sc.height_cm],
             [0.0, 0.0, 1.0]], dtype=torch.float32))
        self.register_buffer("spatial", self._spatial_filters(neurons, xs, ys).float())
        self.register_buffer("pool", self._pool_filters(neurons, gx, gy).float())
        self.register_buffer("temporal", self._temporal_filters(neurons).float())
        self.register_buffer("energy_kernel", self._energy_kernel().float())
        c50 = col("true_c50")
        norm = torch.where(torch.isfinite(c50), 1 + 0.5 / c50.clamp(min=1e-6) ** 2, torch.ones_like(c50))
        self.register_buffer("norm_scale", norm.float())
        for name, key in (("complexity", "true_complexity"), ("exponent", "true_exponent"),
                          ("baseline", "true_baseline_rate"), ("scale", "true_response_scale"),
                          ("run_gain", "true_run_gain"), ("pupil_gain", "true_pupil_gain")):
            self.register_buffer(name, col(key).float())
        # each neuron's gain: its unit-free mean response to a reference natural-like movie
        # shown straight on the retina is its reference rate (independent of the monitor)
        self.register_buffer("gain", torch.ones(self.n_neurons))
        ref = reference_movie(tuple(self.retina_shape), float(self.cfg.retina_deg_per_px), self.frame_rate_hz)
        with torch.no_grad():
            z, e = self._project(ref)
            mean = self._normalized_drive(z[None], e[None]).mean(-1)[0]
        self.gain = (col("true_reference_rate").float() / mean.clamp(min=1e-12))

    # -- construction -------------------------------------------------------------------------

    def _retina_axes(self, rf_x, rf_y, extent, bcfg: BehaviorConfig):
        """Pixel-centre AE coordinates of the retina grid: where RFs and the monitor can meet."""
        sc = self.screen
        t = np.linspace(-0.5, 0.5, 41)
        edge_x = np.concatenate([t * sc.width_cm, np.full(41, sc.width_cm / 2), t[::-1] * sc.width_cm,
                                 np.full(41, -sc.width_cm / 2)])
        edge_y = np.concatenate([np.full(41, sc.height_cm / 2), t[::-1] * sc.height_cm,
                                 np.full(41, -sc.height_cm / 2), t * sc.height_cm])
        mx, my = sc.cm_to_deg(edge_x, edge_y)
        ex, ey = bcfg.eye_range_deg
        m = self.cfg.retina_margin_deg
        lo_x, hi_x = mx.min() - ex - m, mx.max() + ex + m
        lo_y, hi_y = my.min() - ey - m, my.max() + ey + m
        lo_x = max(lo_x, float((rf_x - 3 * extent).min()))
        hi_x = min(hi_x, float((rf_x + 3 * extent).max()))
        lo_y = max(lo_y, float((rf_y - 3 * extent).min()))
        hi_y = min(hi_y, float((rf_y + 3 * extent).max()))
        lo_x, hi_x = max(lo_x, -85.0), min(max(hi_x, lo_x + 1), 85.0)
        lo_y, hi_y = max(lo_y, -85.0), min(max(hi_y, lo_y + 1), 85.0)
        d, k = self.cfg.retina_deg_per_px, self.cfg.pool_factor
        nx = k * max(1, math.ceil((hi_x - lo_x) / d / k))
        ny = k * max(1, math.ceil((hi_y - lo_y) / d / k))
        cx, cy = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
        xs = cx + (torch.arange(nx, dtype=torch.float64) - (nx - 1) / 2) * d
        ys = cy - (torch.arange(ny, dtype=torch.float64) - (ny - 1) / 2) * d  # row 0 at the top
        return xs, ys, (ny, nx)

    def _spatial_filters(self, neurons: pd.DataFrame, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        d, ss = self.cfg.retina_deg_per_px, self.cfg.supersample
        off = ((torch.arange(ss, dtype=torch.float64) + 0.5) / ss - 0.5) * d
        sub_y, sub_x = torch.meshgrid(off, off, indexing="ij")
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        px = (gx.reshape(-1, 1) + sub_x.reshape(1, -1)).reshape(-1)  # [P * ss^2]
        py = (gy.reshape(-1, 1) - sub_y.reshape(1, -1)).reshape(-1)
        v = ae_to_vec(px, py).float()  # single precision: ample for degrees, twice as fast
        rho = torch.deg2rad(torch.hypot(px, py))
        # solid angle of each sub-sample in deg^2 (the AE map stretches areas by rho / sin rho)
        stretch = torch.where(rho > 1e-9, torch.sin(rho) / rho.clamp(min=1e-9), torch.ones_like(rho))
        area = ((d / ss) ** 2 * stretch).float()
        n_sub = ss * ss
        P = gx.numel()
        out = torch.empty(P, 2 * self.n_neurons, dtype=torch.float64)
        t = {k: torch.tensor(neurons[k].to_numpy(dtype=np.float32)) for k in
             ("true_rf_x_deg", "true_rf_y_deg", "true_sigma_deg", "true_aspect", "true_pref_direction_deg",
              "true_sf_cpd", "true_phase_deg", "true_blob_orientation_deg")}
        step = max(1, int(2_000_000 // v.shape[0]))
        for k0 in range(0, self.n_neurons, step):
            sl = slice(k0, min(k0 + step, self.n_neurons))
            rot = _rotation_to_axis(t["true_rf_x_deg"][sl].double(), t["true_rf_y_deg"][sl].double()).float()
            u, w = vec_to_ae(torch.einsum("kij,pj->kpi", rot, v))  # local AE about the RF centre
            # the envelope's axes: the preferred direction, or an untuned centre's elongation axis
            axis = torch.where(torch.isnan(t["true_pref_direction_deg"][sl]),
                               t["true_blob_orientation_deg"][sl], t["true_pref_direction_deg"][sl])
            th = torch.deg2rad(torch.nan_to_num(axis))[:, None]
            a = u * torch.cos(th) + w * torch.sin(th)
            b = -u * torch.sin(th) + w * torch.cos(th)
            sig = t["true_sigma_deg"][sl][:, None]
            sig_b = sig * t["true_aspect"][sl][:, None]
            env = torch.exp(-0.5 * (a / sig) ** 2 - 0.5 * (b / sig_b) ** 2) * area
            sf = t["true_sf_cpd"][sl][:, None]
            untuned = torch.isnan(sf)
            psi = 2 * math.pi * torch.nan_to_num(sf) * a + torch.deg2rad(t["true_phase_deg"][sl])[:, None]
            norm = (math.pi * sig * sig_b)  # half the envelope's integral: |z| = 1 for the optimal grating
            # zero-mean (Morlet) Gabor: minus the envelope times its DC, exp(-(2 pi f sigma)^2 / 2)
            # at the centre's phase. Without it a low-SF Gabor whose envelope is long across the
            # bars (aspect < 1) is also a bar detector for the orthogonal orientation
            phase0 = torch.deg2rad(t["true_phase_deg"][sl])[:, None]
            dc = torch.exp(-0.5 * (2 * math.pi * torch.nan_to_num(sf) * sig) ** 2)
            re = env * (torch.cos(psi) - dc * torch.cos(phase0))
            im = torch.where(untuned, torch.zeros_like(env), env * (torch.sin(psi) - dc * torch.sin(phase0)))
            # untuned cells: ON / OFF centre minus a weaker surround twice as wide (DoG), both
            # stretched by the aspect (>= 1) along b: a weak bias for motion along a
            r2 = a * a + (b / t["true_aspect"][sl][:, None]) ** 2
            dog = (torch.exp(-0.5 * r2 / sig**2) - self.cfg.untuned_surround * torch.exp(-0.125 * r2 / sig**2)) * area
            re = torch.where(untuned, dog * torch.cos(phase0), re)
            re = re.reshape(len(u), P, n_sub).sum(-1) / norm
            im = im.reshape(len(u), P, n_sub).sum(-1) / norm
            out[:, 2 * sl.start : 2 * sl.stop : 2] = re.T.double()
            out[:, 2 * sl.start + 1 : 2 * sl.stop : 2] = im.T.double()
        return out

    def _pool_filters(self, neurons: pd.DataFrame, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
        k = self.cfg.pool_factor
        cx = F.avg_pool2d(gx[None, None], k)[0, 0].reshape(-1)
        cy = F.avg_pool2d(gy[None, None], k)[0, 0].reshape(-1)
        v = ae_to_vec(cx, cy)  # [Pc, 3]
        c = ae_to_vec(torch.tensor(neurons["true_rf_x_deg"].to_numpy(dtype=np.float64)),
                      torch.tensor(neurons["true_rf_y_deg"].to_numpy(dtype=np.float64)))
        r = torch.rad2deg(torch.arccos(torch.clamp(c @ v.T, -1.0, 1.0)))  # [N, Pc] angular distance
        sig = torch.tensor(neurons["true_sigma_deg"].to_numpy(dtype=np.float64))[:, None]
        center = torch.exp(-0.5 * (r / (1.5 * sig)) ** 2)
        annulus = torch.relu(torch.exp(-0.5 * (r / (3 * sig)) ** 2) / 4 - torch.exp(-0.5 * (r / (1.5 * sig)) ** 2))
        center = center / center.sum(1, keepdim=True).clamp(min=1e-12)
        annulus = annulus / annulus.sum(1, keepdim=True).clamp(min=1e-12)
        c50 = torch.tensor(neurons["true_c50"].to_numpy(dtype=np.float64))
        wc = torch.where(torch.isfinite(c50), 1 / c50.clamp(min=1e-6) ** 2, torch.zeros_like(c50))
        ws = torch.tensor(neurons["true_surround_weight"].to_numpy(dtype=np.float64)) * _SURROUND_SCALE
        return (wc[:, None] * center + ws[:, None] * annulus).T  # [Pc, N]

    def _temporal_filters(self, neurons: pd.DataFrame) -> torch.Tensor:
        fps = self.frame_rate_hz
        L = max(2, int(round(self.cfg.temporal_kernel_s * fps)))
        tau = torch.arange(L, dtype=torch.float64) / fps - self.cfg.latency_s  # [L]
        f0 = torch.tensor(neurons["true_tf_hz"].to_numpy(dtype=np.float64))[:, None]
        d = torch.tensor(neurons["true_ds_strength"].to_numpy(dtype=np.float64))[:, None]
        # envelope s.d. = a quarter period (temporal quadrature for DS), capped for latency
        scale = torch.clamp(0.25 / f0, max=self.cfg.max_envelope_s) / math.sqrt(3.0)
        x = torch.clamp(tau[None, :], min=0) / scale
        g = torch.where(tau[None, :] > 0, x**2 * torch.exp(-x), torch.zeros_like(x))
        w0t = 2 * math.pi * f0 * torch.clamp(tau[None, :], min=0)
        hr, hi = g * torch.cos(w0t), d * g * torch.sin(w0t)
        # unit gain for the preferred drift: |sum_t h(t) exp(-i w0 t)| = 1
        t_abs = torch.arange(L, dtype=torch.float64)[None, :] / fps
        ph = 2 * math.pi * f0 * t_abs
        H = torch.complex((hr * torch.cos(ph) + hi * torch.sin(ph)).sum(1),
                          (hi * torch.cos(ph) - hr * torch.sin(ph)).sum(1))
        gain = H.abs().clamp(min=1e-9)[:, None]
        hr, hi = hr / gain, hi / gain
        # the preferred TF actually realised: the peak of |H(f)| for drift in the preferred direction
        f = torch.linspace(0.1, fps / 2, 300, dtype=torch.float64)
        ph = 2 * math.pi * f[:, None] * t_abs  # [F, L]
        Hf = torch.complex(hr @ torch.cos(ph).T + hi @ torch.sin(ph).T, hi @ torch.cos(ph).T - hr @ torch.sin(ph).T)
        self.tf_peak_hz = f[Hf.abs().argmax(1)].numpy()
        hr, hi = hr.flip(-1), hi.flip(-1)  # conv1d correlates: flip for causal conv
        w = torch.empty(2 * self.n_neurons, 2, L, dtype=torch.float64)
        w[0::2, 0], w[0::2, 1] = hr, -hi  # Re y = hr * a - hi * b
        w[1::2, 0], w[1::2, 1] = hi, hr   # Im y = hi * a + hr * b
        return w

    def _energy_kernel(self) -> torch.Tensor:
        fps = self.frame_rate_hz
        L = max(1, int(math.ceil(4 * self.cfg.norm_tau_s * fps)))
        k = torch.exp(-torch.arange(L, dtype=torch.float64) / (self.cfg.norm_tau_s * fps))
        return (k / k.sum()).flip(-1)[None, None]

    # -- evaluation ---------------------------------------------------------------------------

    @property
    def memory_frames(self) -> int:
        """Frames of the past that reach the present (chunked evaluation overlaps this many)."""
        # the energy pool gates the temporal filter's input, so their supports add up
        return self.temporal.shape[-1] + self.energy_kernel.shape[-1] - 2

    def retina(self, frames: torch.Tensor, pupil_center: torch.Tensor) -> torch.Tensor:
        """Contrast images on the retina grid: ``[N, H, W]`` frames, ``[N, 2]`` gaze -> ``[N, Hr, Wr]``."""
        c = 2 * frames - 1
        h, w = c.shape[-2:]
        frame_dpp = self.screen.deg_per_px((h, w))
        target = self.cfg.retina_deg_per_px / 1.5
        if frame_dpp < target:
            size = (max(2, round(h * frame_dpp / target)), max(2, round(w * frame_dpp / target)))
            c = F.interpolate(c[:, None], size=size, mode="area")[:, 0]
        # the plane projection is a homography: fold the monitor's scale and offset into the
        # rotation so a retina ray r maps to grid coordinates (A r)_xy / (A r)_z
        rot = gaze_rotation(pupil_center[:, 0].float(), pupil_center[:, 1].float())
        v = torch.matmul(self.monitor_matrix @ rot, self.retina_vectors.T)  # [N, 3, P]
        z = v[:, 2]
        behind = z <= 1e-3
        inv = 1.0 / torch.where(behind, torch.ones_like(z), z)
        grid = torch.stack([(v[:, 0] * inv).masked_fill_(behind, 4.0), v[:, 1] * inv], dim=-1)
        grid = grid.to(c.dtype).reshape(len(c), *self.retina_shape, 2)
        return F.grid_sample(c[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]

    def _project(self, retina: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Retina contrast images ``[N, Hr, Wr]`` -> complex projections ``[N, 2K]``, pooled energy ``[N, K]``."""
        z = retina.reshape(len(retina), -1) @ self.spatial
        e = F.avg_pool2d((retina * retina)[:, None], self.cfg.pool_factor)[:, 0]
        return z, e.reshape(len(e), -1) @ self.pool

    def spatial_stage(self, frames: torch.Tensor, pupil_center: torch.Tensor, chunk: int = 1024):
        """``[N, H, W]`` frames -> complex projections ``[N, 2K]`` and pooled energy ``[N, K]``."""
        zs, es = [], []
        for s in range(0, len(frames), chunk):
            z, e = self._project(self.retina(frames[s : s + chunk], pupil_center[s : s + chunk]))
            zs.append(z)
            es.append(e)
        return torch.cat(zs), torch.cat(es)

    def _normalized_drive(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """``z [B, T, 2K]``, ``e [B, T, K]`` -> unit-free response ``[B, K, T]`` before gain and baseline."""
        B, T = z.shape[:2]
        K = self.n_neurons
        # contrast gain control acts on the input of the temporal filter (amplitude divided by
        # sqrt(1 + E), so energy by 1 + E): a stimulus that vanishes leaves no rebound
        Le = self.energy_kernel.shape[-1]
        e = e.transpose(1, 2).reshape(B * K, 1, T)
        e = F.conv1d(F.pad(e, (Le - 1, 0)), self.energy_kernel).reshape(B, K, T)
        g = torch.rsqrt(1 + e.clamp(min=0)).repeat_interleave(2, dim=1)  # [B, 2K, T]
        z = z.transpose(1, 2) * g  # [B, 2K, T]
        L = self.temporal.shape[-1]
        y = F.conv1d(F.pad(z, (L - 1, 0)), self.temporal, groups=K)  # [B, 2K, T]: (Re, Im) per neuron
        re, im = y[:, 0::2], y[:, 1::2]
        m = self.complexity[None, :, None]
        drive = (1 - m) * torch.relu(re) ** 2 + m * (re * re + im * im)
        resp = drive * self.norm_scale[None, :, None]
        # the neuron's exponent acts on the amplitude: (energy) ** (q / 2); the small floor
        # keeps the gradient finite at zero drive for q < 2
        return self.gain[None, :, None] * (resp + 1e-12) ** (0.5 * self.exponent[None, :, None])

    def forward(self, frames: torch.Tensor, running_speed: torch.Tensor, pupil_diameter: torch.Tensor,
                pupil_center: torch.Tensor) -> torch.Tensor:
        B, T = frames.shape[:2]
        K = self.n_neurons
        z, e = self.spatial_stage(frames.reshape(B * T, *frames.shape[2:]).float(),
                                  pupil_center.reshape(B * T, 2).float())
        resp = self._normalized_drive(z.reshape(B, T, 2 * K), e.reshape(B, T, K)).transpose(1, 2)  # [B, T, K]
        run = run_level(running_speed.float())[:, :, None]
        pz = torch.clamp((pupil_diameter.float() - self.pupil_ref[0]) / self.pupil_ref[1], -3, 3)[:, :, None]
        gain = torch.exp(self.run_gain * run + self.pupil_gain * pz)  # [B, T, K]
        return self.scale * gain * (resp + self.baseline)


@functools.lru_cache(maxsize=4)
def reference_movie(shape: tuple[int, int], deg_per_px: float, frame_rate_hz: float, seed: int = 0,
                    seconds: float = 20.0, rms_contrast: float = 0.28) -> torch.Tensor:
    """A natural-like contrast movie ``[T, H, W]`` straight on the retina grid.

    A 1/f (pink) pattern, periodic, seen through a camera that pans at about 8 deg/s in a
    direction drawn anew at saccade-like jumps (0.5 Hz, 3-20 deg), like the stimulus
    library's camera motion over photographs; ``rms_contrast`` about that of natural movies
    at the Sensorium render size. Used to set every neuron's gain: a standard stimulus, the
    same for every mouse (cached; do not modify the returned tensor).
    """
    g = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    h, w = shape
    n = 4 * max(h, w)
    f = torch.fft.fftfreq(n, d=deg_per_px, dtype=torch.float64)
    k = torch.hypot(f[:, None], f[None, :])
    amp = torch.where(k > 0.005, 1.0 / k.clamp(min=1e-9), torch.zeros_like(k))
    field = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, n, generator=g, dtype=torch.float64)) * amp).real
    field = (field - field.mean()) / field.std() * rms_contrast
    T = int(round(seconds * frame_rate_hz))
    jumps = torch.rand(T, generator=g) < 0.5 / frame_rate_hz
    jumps[0] = True
    # each jump draws a new pan direction and a displacement of 3-20 deg; between jumps the
    # camera pans at 8 deg/s: the path is a cumulative sum of per-frame steps
    n_j = int(jumps.sum())
    ang = torch.rand(n_j, generator=g, dtype=torch.float64) * 2 * math.pi
    size = 3 + 17 * torch.rand(n_j, generator=g, dtype=torch.float64)
    seg = torch.cumsum(jumps.long(), 0) - 1  # which pan segment each frame is in
    pan = 8.0 / frame_rate_hz * torch.stack([torch.cos(ang[seg]), torch.sin(ang[seg])], -1)
    jump = size[:, None] * torch.stack([torch.cos(ang + 1.0), torch.sin(ang + 1.0)], -1)
    step = torch.where(jumps[:, None], torch.zeros_like(pan), pan)
    step[jumps] = jump
    pos = torch.rand(2, generator=g, dtype=torch.float64) * n * deg_per_px + torch.cumsum(step, 0)
    ys = torch.arange(h, dtype=torch.float64)
    xs = torch.arange(w, dtype=torch.float64)
    fy = pos[:, 1, None] / deg_per_px + ys[None]  # [T, h] fractional rows of the field
    fx = pos[:, 0, None] / deg_per_px + xs[None]
    y0, x0 = fy.floor(), fx.floor()
    wy, wx = (fy - y0)[:, :, None], (fx - x0)[:, None, :]
    y0, x0 = y0.long() % n, x0.long() % n
    y1, x1 = (y0 + 1) % n, (x0 + 1) % n

    def at(yy, xx):
        return field[yy[:, :, None], xx[:, None, :]]

    out = (1 - wy) * (1 - wx) * at(y0, x0) + (1 - wy) * wx * at(y0, x1)
    out = out + wy * (1 - wx) * at(y1, x0) + wy * wx * at(y1, x1)
    return out.float()
