"""Poisson loss: hand-computed values, burn-in skipped."""

import math

import pytest
import torch

from twinlab.errors import InputError
from twinlab.model import poisson_nll, poisson_nll_floor


def test_known_values_and_burn_in():
    rates = torch.tensor([[[100.0, 0.01], [1.0, 2.0], [0.5, 4.0]]])  # [B=1, T=3, N=2]
    y = torch.tensor([[[0.0, 9.0], [0.0, 2.0], [1.0, 4.0]]])
    want = [1.0, 2 - 2 * math.log(2), 0.5 - math.log(0.5), 4 - 4 * math.log(4)]
    assert float(poisson_nll(rates, y, burn_in=1, eps=0)) == pytest.approx(sum(want) / 4, rel=1e-6)
    per_neuron = poisson_nll(rates, y, burn_in=1, eps=0, reduction="neuron")
    assert per_neuron.tolist() == pytest.approx([(want[0] + want[2]) / 2, (want[1] + want[3]) / 2], rel=1e-6)
    # the burn-in frame (a terrible prediction) does not count
    assert float(poisson_nll(rates, y, burn_in=1)) < float(poisson_nll(rates, y, burn_in=0))


def test_the_floor_is_reached_at_rate_equal_response_and_nowhere_lower():
    y = torch.rand(2, 6, 4) * 3
    floor = poisson_nll_floor(y, burn_in=2)
    assert float(poisson_nll(y, y, burn_in=2)) == pytest.approx(float(floor), rel=1e-6)
    for scale in (0.8, 1.25):
        assert float(poisson_nll(y * scale, y, burn_in=2)) > float(floor)


def test_bad_arguments():
    with pytest.raises(InputError, match="differ in shape"):
        poisson_nll(torch.ones(1, 5, 3), torch.ones(1, 5, 2))
    with pytest.raises(InputError, match="burn_in 5 leaves no frame"):
        poisson_nll(torch.ones(1, 5, 3), torch.ones(1, 5, 3), burn_in=5)
