"""Recording virtual mice: sessions in the twinlab session format, and whole cohorts.

In: a :class:`~twinlab.sim.mouse.VirtualMouse` and a :class:`~twinlab.sim.config.SessionConfig`
(or a :class:`~twinlab.sim.config.CohortConfig`). Out: one ``.zarr`` session store per
mouse and session (``docs/session_format.md``), written trial by trial through
:func:`twinlab.data.write_session` (atomic: a failure leaves nothing behind), plus a
``cohort.json`` manifest for a cohort folder.

A session is one continuous showing (the response model's memory carries across trial
boundaries, behaviour and slow variability run on):

* **train / validation**: ``minutes`` of natural movies (``train_preset``, seeded per
  mouse and session, so every mouse sees its own clips) in ``trial_s`` trials; a random
  ``validation_fraction`` of them is the validation tier;
* **test**: every domain of ``test_domains`` (the paper's Table 1 layout: held-out natural
  movies, natural images, Gabors, flashing dots, pink noise, RDKs; and the Sensorium 2023
  drifting-Gabor block, 6 trials x 10 repeats, from which ``twinlab tuning`` measures OSI / DSI
  as the real mice's were measured), ``n_stimuli`` trials
  each shown ``repeats`` times; the test stimuli are seeded by the cohort, so every mouse of
  a cohort sees the same ones. Repeats are spread over the session in a shuffled order.

Per frame the session stores the stimulus conditions of its family (``direction_deg``,
``polarity`` ...; a family's own ``trial`` and ``repeat`` become ``stimulus_trial`` and
``stimulus_repeat``); per trial ``tier``, ``domain``, ``stimulus_id``, ``repeat`` and
``stimulus_preset``; per neuron the mouse's table with its ground truth. Attributes add
``sim_mouse`` (the mouse's config as JSON) and ``true_screen`` (its monitor placement), so
:func:`mouse_from_session` rebuilds the very mouse that was recorded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import xarray as xr

from ..data import TrialBlock
from ..errors import InputError
from ..geometry import Screen
from ..settings import merge, parse_overrides
from .config import MouseConfig, from_dict, to_dict
from .cohort_config import SessionConfig
from .mouse import VirtualMouse

__all__ = ["record_session", "session_plan", "mouse_from_session", "mouse_seed", "session_seed", "test_stimuli",
           "write_session_store"]

_RENAMED = {"trial": "stimulus_trial", "repeat": "stimulus_repeat"}
_DROPPED = {"frame", "time_s", "frame_in_trial", "y", "x"}


def write_session_store(pieces, path, total: int | None = None, progress: bool = True) -> Path:
    """Write per-trial session pieces to ``path`` (the one place the sim touches the store)."""
    from ..data import write_session

    return write_session(pieces, path, progress=progress, total=total)


def mouse_seed(cohort_seed: int, index: int) -> int:
    """The seed of mouse ``index`` of a cohort (independent of how many mice there are)."""
    return int(np.random.SeedSequence([int(cohort_seed), 0x4D5E, int(index)]).generate_state(1)[0])


def session_seed(seed_of_mouse: int, session_index: int) -> int:
    """The seed of session ``session_index`` of the mouse whose seed is ``seed_of_mouse``."""
    return int(np.random.SeedSequence([int(seed_of_mouse), 0x5E, int(session_index)]).generate_state(1)[0] % 2**31)


# -- the plan ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Trial:
    tier: str
    domain: str
    stimulus_id: str
    repeat: int
    preset: str
    source: str  # "train" (next training trial) or "test:<domain>:<k>"


def _spec(preset: str, overrides, session: SessionConfig, screen: Screen, seed: int, extra: dict | None = None):
    from ..stimuli import resolve_spec

    values = merge(parse_overrides(overrides), {"height_px": session.height_px, "width_px": session.width_px,
                                                "seed": int(seed), "screen": screen.to_dict()})
    spec = resolve_spec(preset, values)
    if extra:
        fields = {f.name for f in dataclasses.fields(spec)}
        spec = resolve_spec(preset, merge(values, {k: v for k, v in extra.items() if k in fields}))
    return spec


def _n_train(session: SessionConfig) -> int:
    return max(1, int(math.ceil(session.minutes * 60.0 / session.trial_s - 1e-9)))


def session_plan(session: SessionConfig, seed: int) -> list[_Trial]:
    """The trials of a session in showing order (tiers, domains, stimulus ids, repeats)."""
    session.validate()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0DE4]))
    n_train = _n_train(session)
    n_val = int(round(session.validation_fraction * n_train)) if n_train > 1 else 0
    val = set(rng.choice(n_train, size=n_val, replace=False).tolist()) if n_val else set()
    train = [_Trial("validation" if i in val else "train", "natural_movie" if session.train_preset == "natural_movies"
                    else session.train_preset, f"{session.train_preset}/m{seed}/{i}", 0, session.train_preset, "train")
             for i in range(n_train)]
    test = [_Trial("test", d.name, f"{d.name}/{k}", r, d.preset, f"test:{d.name}:{k}")
            for d in session.test_domains for k in range(d.n_stimuli) for r in range(d.repeats)]
    if session.shuffle and test:
        order = rng.permutation(len(test))
        test = [test[i] for i in order]
        # a repeat's index follows the order it is shown in
        seen: dict[str, int] = {}
        for t in test:
            t.repeat = seen.get(t.stimulus_id, 0)
            seen[t.stimulus_id] = t.repeat + 1
        slots = np.sort(rng.choice(n_train + len(test), size=len(test), replace=False))
    else:
        slots = np.arange(n_train, n_train + len(test))
    out: list[_Trial] = []
    ti, si = iter(train), 0
    for pos in range(n_train + len(test)):
        if si < len(test) and slots[si] == pos:
            out.append(test[si])
            si += 1
        else:
            out.append(next(ti))
    return out


def _conditions(stim: xr.Dataset) -> dict[str, np.ndarray]:
    out = {}
    for name, c in stim.coords.items():
        if name in _DROPPED or c.dims != ("frame",):
            continue
        out[_RENAMED.get(name, name)] = np.asarray(c.values)
    return out


def _crop(stim: xr.Dataset, max_s: float) -> xr.Dataset:
    if max_s <= 0:
        return stim
    n = max(1, int(round(max_s * float(stim.attrs.get("frame_rate_hz", 30.0)))))
    return stim.isel(frame=slice(0, n))


def test_stimuli(session: SessionConfig, screen: Screen, cohort_seed: int) -> dict[str, xr.Dataset]:
    """The unique test-block trials, keyed ``test:<domain>:<k>`` (shared by a cohort)."""
    from ..stimuli import iter_trials

    out = {}
    for j, d in enumerate(session.test_domains):
        spec = _spec(d.preset, d.overrides, session, screen,
                     int(np.random.SeedSequence([int(cohort_seed), 0x7E57, j]).generate_state(1)[0] % 2**31))
        trials = list(islice(iter_trials(spec), d.n_stimuli))
        if len(trials) < d.n_stimuli:
            raise InputError(f"test domain {d.name}: preset {d.preset!r} makes {len(trials)} trials, "
                             f"n_stimuli asks for {d.n_stimuli}")
        for k, t in enumerate(trials):
            out[f"test:{d.name}:{k}"] = _crop(t, d.max_trial_s)
    return out


# -- one session --------------------------------------------------------------------------------


def record_session(mouse: VirtualMouse, session: SessionConfig, path: str | os.PathLike, *, session_id: str = "s0",
                   seed: int = 0, cohort_seed: int = 0, tests: dict[str, xr.Dataset] | None = None,
                   provenance: dict | None = None, device: str | None = None, chunk_frames: int = 2048,
                   render_workers: int | None = None, progress: bool = True, timings: dict | None = None) -> Path:
    """Record one session of ``mouse`` to ``path`` (``.zarr``); see the module docstring.

    ``seed`` seeds this session's own content (training clips, order, behaviour, noise);
    ``cohort_seed`` the test stimuli (pass ``tests`` to reuse ones already rendered).
    ``device``: where the responses and their noise are computed (``cuda``: the mouse is
    moved there; the noise is then drawn by that device's generator, so a session recorded
    on a GPU differs in its noise from one recorded on the CPU, and the provenance says
    which). ``render_workers``: processes rendering the training movies ahead (None: every
    usable core but one for long sessions, none for short ones; 0: in this process), while
    this process computes responses and a thread writes the store. ``timings``: a dict
    filled with seconds spent per stage in this process (``setup_s``, ``tests_s`` rendering
    the test block, ``behavior_s`` drawing behaviour and slow variability, ``render_wait_s``
    waiting for the workers' frames, ``responses_s`` rates and noise) and ``produced_at``
    (``time.perf_counter()`` when the last trial was handed to the writer), for benchmarks.
    """
    from ..stimuli import family_of, usable_cpus
    from ..stimuli import plan as stimulus_plan
    from ..stimuli.parallel import iter_trials_ahead
    from ..storage import check_writable

    t0 = time.perf_counter()
    session.validate()
    path = Path(path)
    if path.suffix.lower() != ".zarr":
        raise InputError(f"{path}: a simulated session is written as a .zarr store")
    check_writable(path)
    if path.exists():
        raise InputError(f"{path} already exists; it is not overwritten")
    dev = torch.device(device) if device else torch.device("cpu")
    screen = mouse.nominal_screen
    plan = session_plan(session, seed)
    ss = np.random.SeedSequence([int(seed), 0x5E55])
    train_seed, beh_seed, noise_seed = (int(s.generate_state(1)[0] % 2**31) for s in ss.spawn(3))
    n_train = sum(t.source == "train" for t in plan)
    train_spec = _spec(session.train_preset, session.train_overrides, session, screen, train_seed,
                       {"n_trials": n_train, "clip_duration_s": session.trial_s})
    train_plan = stimulus_plan(train_spec)
    if render_workers is None:
        # worker processes pay off from about a minute of movie on (their start costs ~0.1 s)
        render_workers = usable_cpus() - 1 if int(train_plan["n_frames"].sum()) >= 1800 else 0
    # the training movies start rendering now, while the test block, behaviour and noise are drawn
    train = iter_trials_ahead(family_of(train_spec), train_spec, int(render_workers), plan=train_plan)
    clock = timings if timings is not None else {}
    w0 = time.perf_counter()
    tests = tests if tests is not None else test_stimuli(session, screen, cohort_seed)
    clock["tests_s"] = time.perf_counter() - w0
    attrs = {
        "frame_rate_hz": mouse.frame_rate_hz,
        "mouse_id": mouse.mouse_id,
        "session_id": session_id,
        "screen": json.dumps(screen.to_dict()),
        "true_screen": json.dumps(mouse.screen.to_dict()),
        "sim_mouse": json.dumps(to_dict(mouse.config)),
        "pupil_center_units": "deg (eye rotation; x rightward gaze, y upward)",
        "pupil_diameter_units": "mm",
        "provenance": json.dumps({"writer": "twinlab.sim.record_session", "session": to_dict(session),
                                  "session_seed": int(seed), "cohort_seed": int(cohort_seed),
                                  **({"noise_device": dev.type} if dev.type != "cpu" else {}), **(provenance or {})}),
    }
    train_len = train_plan.groupby("trial", sort=False)["n_frames"].sum().to_numpy()
    clock["setup_s"] = time.perf_counter() - t0 - clock["tests_s"]
    blocks = _blocks(mouse, plan, tests, train, train_len, attrs, beh_seed, noise_seed, dev, chunk_frames, clock)
    return write_session_store(blocks, path, total=len(plan), progress=progress)


def _blocks(mouse: VirtualMouse, plan: list[_Trial], tests: dict[str, xr.Dataset], train: Iterator[xr.Dataset],
            train_len: np.ndarray, attrs: dict, beh_seed: int, noise_seed: int, dev: torch.device, chunk_frames: int,
            clock: dict) -> Iterator[TrialBlock]:
    """The session's trials as :class:`~twinlab.data.TrialBlock`\\ s, with the responses of one continuous showing."""

    def stimulus(t: _Trial) -> xr.Dataset:
        if t.source == "train":
            w0 = time.perf_counter()
            try:
                return next(train)
            except StopIteration:
                raise RuntimeError("the training stimulus ran out of trials") from None
            finally:
                clock["render_wait_s"] = clock.get("render_wait_s", 0.0) + time.perf_counter() - w0
        return tests[t.source]

    # lengths first: behaviour and slow variability are drawn for the whole session up front
    # (the training trials are rendered ahead, in order, by the workers)
    it = iter(train_len)
    lengths = [int(next(it)) if t.source == "train" else tests[t.source].sizes["frame"] for t in plan]
    total = int(sum(lengths))

    w0 = time.perf_counter()
    mouse = mouse.to(dev)
    gen = torch.Generator(device=dev).manual_seed(int(noise_seed))
    neurons = _neuron_coords(mouse)
    mem = mouse.model.memory_frames
    behavior = mouse.draw_behavior(total, seed=beh_seed)
    latent = mouse.draw_latent(1, total, torch.Generator().manual_seed(int(noise_seed) + 1))
    if dev.type != "cpu":
        latent = latent.to(dev)
    clock["behavior_s"] = time.perf_counter() - w0
    beh_all = [behavior["running_speed"].values, behavior["pupil_diameter"].values, behavior["pupil_center"].values]
    scanning = mouse.config.noise.scan_hz > 0
    state = {"context": None, "start": 0, "ev": None, "ev_start": 0, "done": 0, "first": True}
    # finalised responses not yet handed out: rows from frame ``base`` on
    ready = {"resp": np.zeros((0, mouse.n_neurons), np.float32), "base": 0}
    queue: list[tuple[_Trial, xr.Dataset, int]] = []  # trials rendered, waiting for their responses

    def advance(frames: np.ndarray, last: bool) -> Iterator[TrialBlock]:
        """Responses for the next frames of the showing; emit every trial whose frames are final.

        Rates need the model's memory of earlier frames (kept as context); the scan's linear
        interpolation needs the next scan, so the frames after the last complete scan's
        centre wait for the next call (their events are kept, nothing is drawn twice).
        """
        w0 = time.perf_counter()
        n, start = len(frames), state["start"]
        if n:
            sl = slice(start, start + n)
            inputs = [frames, *(b[sl] for b in beh_all)]
            if state["context"] is not None:
                inputs = [np.concatenate([c, x]) for c, x in zip(state["context"], inputs)]
            k = len(inputs[0]) - n
            with torch.no_grad():
                tens = [torch.as_tensor(np.ascontiguousarray(x)[None], device=dev) for x in inputs]
                rates = mouse.rates(*tens)[:, k:]
                ev = mouse.draw_events(rates, gen, latent, start)
            state["context"] = [x[-mem:] if mem else x[:0] for x in inputs]
            state["ev"] = ev if state["ev"] is None else torch.cat([state["ev"], ev], 1)
            state["start"] = start + n
        ev, ev_start = state["ev"], state["ev_start"]
        if ev is not None and ev.shape[1]:
            T = ev.shape[1]
            if not scanning:
                out, cut, keep_from = ev, T, T
            else:
                out = mouse.scan_resample(ev, ev_start)
                edges = mouse.scan_edges(ev_start, ev_start + T)
                complete = len(edges) - 1 - (0 if last else 1)  # the last scan may be partial
                if last:
                    cut, keep_from = T, T
                elif complete >= 2:
                    cut = int(np.floor((edges[complete - 1] + edges[complete] - 1) / 2)) + 1
                    keep_from = int(edges[complete - 1])
                else:
                    cut, keep_from = state["done"] - ev_start, 0
            lo = state["done"] - ev_start
            if cut > lo:
                fresh = out[0, lo:cut].cpu().numpy()  # frames done .. ev_start + cut
                keep = queue[0][2] if queue else state["done"]  # the first frame not yet handed out
                rest = ready["resp"][keep - ready["base"] :]
                ready["resp"] = np.concatenate([rest, fresh]) if len(rest) else fresh
                ready["base"] = keep
                state["done"] = ev_start + cut
            state["ev"] = ev[:, keep_from:]
            state["ev_start"] = ev_start + keep_from
        clock["responses_s"] = clock.get("responses_s", 0.0) + time.perf_counter() - w0
        # emit the trials whose frames all have their responses (views: nothing is copied)
        while queue and queue[0][2] + queue[0][1].sizes["frame"] <= state["done"]:
            t, s, s0 = queue.pop(0)
            m = s.sizes["frame"]
            r = ready["resp"][s0 - ready["base"] : s0 - ready["base"] + m]
            yield _block(s, r, [b[s0 : s0 + m] for b in beh_all], t, neurons if state["first"] else None,
                         attrs if state["first"] else {})
            state["first"] = False

    pending: list[np.ndarray] = []
    acc = pos = 0
    for t in plan:
        s = stimulus(t)
        queue.append((t, s, pos))
        pending.append(s.frames.values)
        pos += s.sizes["frame"]
        acc += s.sizes["frame"]
        if acc >= chunk_frames:
            yield from advance(np.concatenate(pending).astype(np.float32, copy=False), last=False)
            pending, acc = [], 0
    yield from advance(np.concatenate(pending).astype(np.float32, copy=False) if pending
                       else np.zeros((0, 1, 1), np.float32), last=True)
    if queue:
        raise RuntimeError(f"{len(queue)} trials were left without responses")
    clock["produced_at"] = time.perf_counter()


def _neuron_coords(mouse: VirtualMouse) -> dict[str, np.ndarray]:
    out = {}
    for c in mouse.neurons.columns:
        v = mouse.neurons[c].to_numpy()
        out[c] = v.astype(str).astype(object) if v.dtype == object else v
    return out


_VAR_ATTRS = {"responses": {"units": "deconvolved-calcium-like activity per frame (virtual mouse)"},
              "running_speed": {"units": "cm/s"}, "pupil_diameter": {"units": "mm"}, "pupil_center": {"units": "deg"}}


def _block(stim: xr.Dataset, responses: np.ndarray, beh: list[np.ndarray], t: _Trial, neurons, attrs) -> TrialBlock:
    return TrialBlock(
        frames=stim.frames.values, responses=responses, running_speed=beh[0], pupil_diameter=beh[1],
        pupil_center=beh[2], trial_frames=[stim.sizes["frame"]],
        trials={"tier": [t.tier], "domain": [t.domain], "stimulus_id": [t.stimulus_id], "repeat": [t.repeat],
                "stimulus_preset": [t.preset]},
        frame_coords=_conditions(stim), neurons=neurons, attrs=attrs, var_attrs=_VAR_ATTRS)


def mouse_from_session(path: str | os.PathLike) -> VirtualMouse:
    """The virtual mouse that recorded the session at ``path`` (same neurons, same monitor)."""
    from ..storage import open_dataset

    ds = open_dataset(path)
    if "sim_mouse" not in ds.attrs:
        raise InputError(f"{path}: not a session recorded by twinlab.sim (no 'sim_mouse' attribute)")
    cfg = from_dict(MouseConfig, json.loads(ds.attrs["sim_mouse"]), f"{path} sim_mouse")
    screen = from_dict(Screen, json.loads(ds.attrs["true_screen"]), f"{path} true_screen")
    mouse = VirtualMouse(cfg, screen=screen, mouse_id=str(ds.attrs.get("mouse_id", "")))
    if ds.sizes.get("neuron") != mouse.n_neurons:
        raise InputError(f"{path}: holds {ds.sizes.get('neuron')} neurons, its mouse config makes {mouse.n_neurons}")
    return mouse
