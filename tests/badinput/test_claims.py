"""Nothing mixed: every output is claimed by one writer; killed writers leave nothing that lasts.

Cases: two ``twinlab train`` runs into one ``--out`` (the second is refused, exit 2, while the
first finishes with its own run.json and weights); a writer killed with SIGKILL (its stale
lock is taken over and its temporary folder removed by the next write to the same place);
the fallback without ``flock`` (a lock whose PID is gone is stale, a live one is not).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from twinlab import storage
from twinlab.errors import InputError
from twinlab.model import load_checkpoint, read_header
from twinlab.storage import atomic_output, claim, write_dataset

from badinput_helpers import assert_refused, train_args, twinlab_command

HOLD = """
import sys, time
from pathlib import Path
from twinlab.storage import atomic_output
with atomic_output(Path(sys.argv[1])) as tmp:
    tmp.write_text("half written")
    print("holding", flush=True)
    time.sleep(120)
"""


def _wait_for(predicate, proc, timeout_s=60.0):
    t = time.monotonic()
    while not predicate():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "writer exited"
        assert time.monotonic() - t < timeout_s, "the writer never got there"
        time.sleep(0.05)


def test_second_train_into_the_same_folder_is_refused_while_the_first_continues(mouse, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the first run: long enough (40 tiny steps after start-up) to still be running when the second starts
    first = subprocess.Popen([*twinlab_command(), "train", "--data", str(mouse),
                              *train_args("iterations=40", "checkpoint_every=20", "log_every=20"), "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (tmp_path / ".run.lock").exists(), first)
        line = assert_refused(["train", "--data", mouse, *train_args(), "--out", out], str(out), "is being written by",
                              f"process {first.pid}")
        assert "choose another output" in line
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    # the folder holds the first run alone: its settings and weights agree, nothing of the second
    spec = json.loads((out / "run.json").read_text())
    assert spec["config"]["iterations"] == 40
    header = read_header(out / "model.safetensors")
    assert header["extra"]["steps"] == 40 and header["extra"]["train_config"]["iterations"] == 40
    assert load_checkpoint(out / "model.safetensors").config.to_dict() == spec["model"]
    assert not (tmp_path / ".run.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_killed_writer_leaves_a_stale_lock_and_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "table.nc"
    writer = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        temporaries = [p for p in tmp_path.iterdir() if p.name.startswith(".table.nc.tmp-")]
        assert len(temporaries) == 1 and (tmp_path / ".table.nc.lock").exists()
        ds = xr.Dataset({"x": ("i", np.arange(3.0))})
        # while the writer lives, a second writer of the same file is refused, naming it
        with pytest.raises(InputError, match=f"process {writer.pid}"):
            write_dataset(ds, target)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    # killed: its lock file and its half-written temporary folder are still there...
    assert (tmp_path / ".table.nc.lock").exists() and temporaries[0].exists()
    write_dataset(ds, target)
    # ...until the next write to the same place: the lock taken over, the temporary removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.nc"]
    with xr.open_dataset(target, engine="scipy") as back:
        np.testing.assert_array_equal(back["x"].values, [0.0, 1.0, 2.0])


def test_temporaries_of_other_outputs_and_of_older_versions(tmp_path):
    target = tmp_path / "a.csv"
    mine_old = tmp_path / ".a.csv.k3j_9xq2"  # mkdtemp's 8 characters: an older twinlab's temporary
    mine_new = tmp_path / ".a.csv.tmp-abc"
    theirs = tmp_path / ".b.csv.tmp-abc"  # another output's: not ours to remove
    for d in (mine_old, mine_new, theirs):
        d.mkdir()
        (d / "part").write_text("x")
    with atomic_output(target) as tmp:
        tmp.write_text("done\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.csv.tmp-abc", "a.csv"]


def test_claims_are_reentrant_in_one_process_and_released(tmp_path):
    out = tmp_path / "folder"
    with claim(out):
        with claim(out):  # a command claims its --out, the library claims it again
            assert (tmp_path / ".folder.lock").exists()
        assert (tmp_path / ".folder.lock").exists()
    assert not (tmp_path / ".folder.lock").exists()


def test_without_flock_a_dead_pid_is_stale_and_a_live_one_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "fcntl", None)
    target = tmp_path / "x.nc"
    lock = tmp_path / ".x.nc.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = __import__("socket").gethostname()
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": host, "since": "then"}))
    with claim(target):  # the owner is gone: taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": os.getppid(), "host": host, "since": "now"}))
    with pytest.raises(InputError, match=f"process {os.getppid()} on {host}"):
        with claim(target):
            pass
