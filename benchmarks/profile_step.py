"""Where a training step's GPU time goes: kernel table, and the readout's share.

For one model size (the sizes of ``bench_train.py``) on synthetic stores: the mixed step
uncaptured (parts compiled) under ``torch.profiler`` (the top kernels by GPU time), the step
captured as a CUDA graph with channels-last 3D off and on (ms/step), and the Gaussian
readout alone (forward + backward).

    PYTHONPATH=. python3 benchmarks/profile_step.py --models fig4,paper --out $OUT
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import MODELS, NEURONS, write_stores  # noqa: E402
from twinlab.data import ClipDataset  # noqa: E402
from twinlab.model import Twin, resolve_config  # noqa: E402
from twinlab.model import readout as readout_mod  # noqa: E402
from twinlab.train import resolve_train_config  # noqa: E402
from twinlab.train.batches import select_minutes  # noqa: E402
from twinlab.train.objective import session_infos, set_statistics  # noqa: E402
from twinlab.train.prepare import compile_twin  # noqa: E402
from twinlab.train.mixed import DeviceSessions, MixedPlan  # noqa: E402
from twinlab.train.step import MixedStep, build_optimizer  # noqa: E402


def log(*a):
    print(*a, flush=True)


def timed(fn, n: int) -> float:
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(n):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / n


def build(stores, name, batch, channels_last: bool, compile_: bool, graph: bool):
    preset, overrides = MODELS[name]
    model_cfg = resolve_config(preset, overrides)
    cfg = resolve_train_config("paper", ["optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1",
                                         f"batch_size={batch}", "clip_frames=70", "burn_in=10"])
    ds = ClipDataset(stores, clip_frames=70, tier="train", random_offsets=True)
    items, _ = select_minutes(ds, 0)
    infos = session_infos(stores)
    twin = Twin(model_cfg, infos, seed=0)
    for s, info in enumerate(infos):
        set_statistics(twin, info.key, ds.statistics(s), ds.response_scale(s).numpy())
    dev = torch.device("cuda")
    twin.to(dev)
    twin.set_memory_format(channels_last)
    twin.train()
    if compile_:
        compile_twin(twin, log)
    params = [p for p in twin.parameters() if p.requires_grad]
    opt = build_optimizer(params, cfg, dev, graph=graph)
    data = DeviceSessions(ds, list(twin.sessions), model_cfg.frame_shape, dev)
    plan = MixedPlan(ds, items, batch, seed=0)
    return MixedStep(twin, opt, params, cfg, data, plan, dev, True, graph, log=log), twin


def readout_bench(name: str, batch: int, neurons: int) -> None:
    """The readout alone, forward + backward, at the core's output size."""
    preset, overrides = MODELS[name]
    cfg = resolve_config(preset, overrides)
    twin = Twin(cfg, [], seed=0)
    h, w = twin.core.feature_shape
    c = twin.core.out_channels
    ro = readout_mod.GaussianReadout(cfg.readout, neurons, c).cuda().train()
    feats = torch.randn(batch, 70, c, h, w, device="cuda", dtype=torch.bfloat16, requires_grad=True)

    def run():
        ro.zero_grad(set_to_none=True)
        ro(feats).sum().backward()

    for _ in range(3):
        run()
    log(f"[{name}] readout alone ({batch} clips x 70 frames x {c} ch on {h} x {w}, {neurons} neurons): "
        f"{timed(run, 10):.2f} ms forward + backward")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="fig4,paper")
    ap.add_argument("--batch", type=int, default=0, help="clips per session and step (default 32; paper 8)")
    ap.add_argument("--out", default="")
    ap.add_argument("--kernels-only", action="store_true", help="only the kernel table (no captured-step timing)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="twinlab_profile_"))
    for name in args.models.split(","):
        preset, overrides = MODELS[name]
        shape = resolve_config(preset, overrides).frame_shape
        neurons = NEURONS.get(name, 300)
        batch = args.batch or (8 if name.startswith("paper") else 32)
        stores = write_stores(work, shape, 2, neurons, trials=12, frames=140)
        if not args.kernels_only:
            readout_bench(name, 2 * batch, neurons)
        for cl in () if args.kernels_only else (False, True):
            t0 = time.perf_counter()
            step, twin = build(stores, name, batch, cl, True, True)
            ms = timed(lambda s=step: s(5), 10)
            log(f"[{name}] graph step, channels_last_3d={cl}: {ms:.1f} ms/step = {2 * batch / ms * 1000:.1f} clips/s "
                f"({step.mode}; built in {time.perf_counter() - t0:.1f} s)")
            del step, twin
            torch.cuda.empty_cache()
        step, twin = build(stores, name, batch, False, True, False)
        for k in range(3):
            step(k)
        torch.cuda.synchronize()
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for k in range(3):
                step(10 + k)
            torch.cuda.synchronize()
        try:
            table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=30, max_name_column_width=90)
        except Exception:  # noqa: BLE001 - newer torch names it device time
            table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=30, max_name_column_width=90)
        log(f"[{name}] uncaptured mixed step, 3 steps, top kernels by GPU time:\n{table}")
        if args.out:
            Path(args.out, f"profile_{name}.txt").write_text(table)
        del step, twin
        torch.cuda.empty_cache()
        for s in stores:
            s.unlink()


if __name__ == "__main__":
    main()
