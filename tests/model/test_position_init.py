"""Readout positions from the data: neurons planted at known feature-map positions are found there."""

import numpy as np
import pytest
import torch

from twinlab.model import SessionInfo, Twin, TwinConfig
from twinlab.model.position_init import best_positions, explained_variance_map, init_positions
from twinlab.train.objective import Prediction


def _centres(rows, cols, h, w):
    return torch.stack([(2 * cols.float() + 1) / w - 1, 1 - (2 * rows.float() + 1) / h], 1)


def test_planted_pixels_are_found_and_a_shared_drive_lands_between_them():
    g = torch.Generator().manual_seed(0)
    b, t, c, h, w, n = 6, 40, 8, 7, 9, 30
    feats = torch.randn(b, t, c, h, w, generator=g)
    rows, cols = torch.randint(0, h, (n,), generator=g), torch.randint(0, w, (n,), generator=g)
    weights = torch.randn(n, c, generator=g)
    at = feats[:, :, :, rows, cols]  # [B, T, C, N]
    drive = (at * weights.t()).sum(2)
    resp = torch.exp(0.3 * drive) + 0.1 * torch.rand(b, t, n, generator=g)
    pos = init_positions(feats, resp)
    assert torch.allclose(pos, _centres(rows, cols, h, w), atol=0.25 * 2 / w)  # within a quarter pixel
    # one neuron driven equally by two horizontally adjacent pixels starts between them
    two = feats[:, :, :, 3, 4] + feats[:, :, :, 3, 5]
    r2 = explained_variance_map(feats, (two * weights[0]).sum(-1, keepdim=True))
    x = best_positions(r2, h, w)[0, 0].item()
    assert x == pytest.approx(((2 * 4.5 + 1) / w - 1), abs=0.15 * 2 / w)


class _Clips:
    """The two things place_readouts reads of a training ClipDataset."""

    def __init__(self, frames, responses):
        self.frames, self.responses = frames, responses
        self.item_sessions = np.zeros(len(frames), dtype=np.int64)

    def __getitem__(self, i):
        t = self.frames.shape[1]
        return {"frames": self.frames[i], "running_speed": torch.zeros(t), "pupil_diameter": torch.zeros(t),
                "pupil_center": torch.zeros(t, 2), "responses": self.responses[i]}


def test_a_twin_readout_started_from_the_data_sits_where_the_responses_came_from():
    torch.manual_seed(0)
    cfg = TwinConfig.small()
    twin = Twin(cfg, [SessionInfo("m", 40)], seed=1)
    twin.eval()
    frames = torch.rand(24, 30, *cfg.frame_shape)
    with torch.no_grad():
        feats = twin.core_features(frames, torch.zeros(24, 30), torch.zeros(24, 30), torch.zeros(24, 30, 2),
                                   session="m")
        h, w = feats.shape[-2:]
        g = torch.Generator().manual_seed(2)
        rows, cols = torch.randint(1, h - 1, (40,), generator=g), torch.randint(1, w - 1, (40,), generator=g)
        planted = _centres(rows, cols, h, w)
        twin.readouts["m"].mu.copy_(planted)
        rates = twin(frames, torch.zeros(24, 30), torch.zeros(24, 30), torch.zeros(24, 30, 2), session="m")
        twin.readouts["m"].mu.uniform_(-0.5, 0.5)  # the random start a fresh session gets
    pixel = 2 / w
    random_error = (twin.readouts["m"].mu - planted).norm(dim=1).median() / pixel
    run_cfg = type("Cfg", (), {"position_init": "data", "position_init_clips": 24, "burn_in": 5})()
    placed = Prediction().place_readouts(twin, _Clips(frames, rates), run_cfg, torch.device("cpu"))
    error = (twin.readouts["m"].mu - planted).norm(dim=1) / pixel
    assert placed == ["m"] and random_error > 2.0
    assert error.median() < 0.5 and (error < 1.0).float().mean() > 0.8
    assert not twin.training  # the mode it was in
    skipped = Prediction().place_readouts(twin, _Clips(frames, rates), type("Cfg", (), {"position_init": "random"})(),
                                          torch.device("cpu"))
    assert skipped == []


def test_statistics_added_in_chunks_equal_one_pass():
    from twinlab.model.position_init import PositionStats

    g = torch.Generator().manual_seed(4)
    feats, resp = torch.randn(6, 20, 5, 4, 3, generator=g), torch.rand(6, 20, 7, generator=g)
    chunked = PositionStats()
    chunked.add(feats[:2], resp[:2])
    chunked.add(feats[2:], resp[2:])
    assert torch.allclose(chunked.r2(), explained_variance_map(feats, resp), atol=1e-5)
    with pytest.raises(ValueError, match="two frames"):
        PositionStats().r2()
