"""Several processes: ``torchrun --nproc-per-node 2 -m twinlab train`` on the CPU (gloo).

Both ranks end with bit-identical weights (checked in the run by an all-reduce of min and max
of every parameter), and the result equals, bit for bit, one process that accumulates the
same two micro-batches per step: the same clips, the same random draws (seeded per global
batch), gradients averaged the same way (halving is exact in floating point).
"""

import json
import os
import socket
import subprocess
import sys

import torch
from click.testing import CliRunner

import twinlab.cli.train  # noqa: F401
from twinlab.cli import main
from twinlab.model import load_checkpoint

SETTINGS = ["epochs=2", "iterations=3", "clip_frames=12", "burn_in=3", "batch_size=2", "validate_every=0",
            "checkpoint_every=0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process_accumulating_two_batches(cohort, tmp_path):
    folder = cohort["foundation"][0].parent
    sets = [a for s in SETTINGS for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "twinlab", "train", "--data", str(cohort["foundation"][0]),
           "--data", str(cohort["foundation"][1]), "--config", "small", *sets, "--no-eval", "--quiet",
           "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_identical"] is True
    single = CliRunner().invoke(main, ["train", "--data", str(folder / cohort["foundation"][0].name), "--data",
                                       str(cohort["foundation"][1]), "--config", "small", *sets, "--set", "accumulate=2",
                                       "--no-eval", "--quiet", "--out", str(tmp_path / "one")])
    assert single.exit_code == 0, single.output
    a = load_checkpoint(tmp_path / "ddp" / "model.safetensors").state_dict()
    b = load_checkpoint(tmp_path / "one" / "model.safetensors").state_dict()
    changed = load_checkpoint(tmp_path / "one" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and training did move the weights (the comparison is not between two untouched twins)
    from twinlab.model import Twin

    fresh = Twin(changed.config, changed.sessions.values(), seed=0).state_dict()
    assert not torch.equal(fresh["core.recurrent.out.weight"], b["core.recurrent.out.weight"])
