"""Every storage read error is one line naming the file: checksums, truncation, missing parts.

Cases (each for ``evaluate`` and ``train``): a shard whose checksummed index no longer
matches (zarr raises a checksum error), a bit flipped inside a chunk (every chunk twinlab
writes ends in a crc32c, so this too is a checksum error, never silently wrong numbers), chunk files cut to half their length, a chunk file
gone, a whole array gone; ``tuning`` on a scan with a damaged chunk, and on a PNG.
"""

from __future__ import annotations

import shutil

import pytest

from badinput_helpers import assert_refused, train_args


def _chunk_files(store, name):
    return sorted(p for p in (store / name).rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray"))


def _damage(store, name, kind):
    files = _chunk_files(store, name)
    assert files, f"{store} has no chunk files of {name}"
    if kind == "checksum":
        for f in files:
            b = bytearray(f.read_bytes())
            b[-1] ^= 0xFF  # the shard index's crc32c
            f.write_bytes(bytes(b))
    elif kind == "bit_flip":
        for f in files:
            b = bytearray(f.read_bytes())
            b[len(b) // 3] ^= 0x10  # inside an inner chunk: caught by that chunk's own checksum
            f.write_bytes(bytes(b))
    elif kind == "truncated":
        for f in files:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif kind == "chunk_gone":
        files[-1].unlink()
    elif kind == "array_gone":
        shutil.rmtree(store / name)


EXPECT = {"checksum": "cannot be read", "bit_flip": "cannot be read", "truncated": "cannot be read", "chunk_gone": "truncated store",
          "array_gone": "missing variable 'responses'"}


@pytest.mark.parametrize("kind", list(EXPECT))
def test_damaged_session_store_is_one_line_for_evaluate_and_train(kind, mouse, model, copy_of, tmp_path):
    store = copy_of(mouse)
    _damage(store, "responses", kind)
    assert_refused(["evaluate", "--model", model, "--data", store], str(store), EXPECT[kind])
    assert_refused(["train", "--data", store, *train_args(), "--out", tmp_path / "run"], str(store), EXPECT[kind])
    assert not (tmp_path / "run").exists()


def test_checksum_error_names_the_variable_and_frames(mouse, model, copy_of):
    store = copy_of(mouse)
    _damage(store, "responses", "checksum")
    line = assert_refused(["evaluate", "--model", model, "--data", store], "'responses' frames", "checksum")
    assert "Traceback" not in line


@pytest.mark.parametrize("kind", ["checksum", "truncated"])
def test_tuning_of_a_damaged_scan(kind, scan, copy_of, tmp_path):
    damaged = copy_of(scan)
    files = _chunk_files(damaged, "responses")
    if kind == "checksum":
        b = bytearray(files[0].read_bytes())
        b[len(b) // 2] ^= 0xFF
        files[0].write_bytes(bytes(b))
    else:
        files[0].write_bytes(files[0].read_bytes()[:7])
    assert_refused(["tuning", damaged, "--out", tmp_path / "t.nc"], str(damaged), "cannot be read")
    assert not (tmp_path / "t.nc").exists()


def test_tuning_of_a_png(tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert_refused(["tuning", png, "--out", tmp_path / "t.nc"], str(png), "expected a .zarr store or a .nc file")
