"""Two-input activation: a shared MLP of two inputs learns XOR, which ReLU units at the same
parameter count cannot; it starts as GELU; it is selected in the model configuration."""

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from twinlab.model import SessionInfo, Twin, resolve_config
from twinlab.model.activations import TwoInputActivation


BITS = torch.tensor(list(itertools.product([0, 1], repeat=8)), dtype=torch.float32)
X = BITS * 2 - 1                                   # every 8-bit input, as +-1
Y = (BITS[:, 0::2] != BITS[:, 1::2]).float()       # 4 XORs, of the bit pairs (0, 1), (2, 3), ...


class TwoInputLayer(nn.Module):
    """One layer of 4 two-input units: 8 linear inputs, paired (i, i + 4) by the shared MLP."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.act = TwoInputActivation(hidden=4)

    def forward(self, x):
        return self.act(self.linear(x))


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _fit(model: nn.Module, steps: int = 400) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        loss = (model(X) - Y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(X) - Y).pow(2).mean())


def test_learns_xor_where_relu_at_the_same_parameter_count_cannot():
    torch.manual_seed(0)
    two = TwoInputLayer()
    assert _n(two) == 8 * 8 + 8 + 17                     # 89 parameters (the shared MLP: 17)
    assert _fit(two) < 1e-3                                # all four XORs, exactly
    # ReLU with at least as many parameters: 7 hidden units and a linear readout (95 parameters).
    # One XOR takes two ReLU units, so 7 cannot serve 4 XORs: one of them stays unsolved
    for seed in range(3):
        torch.manual_seed(seed)
        relu = nn.Sequential(nn.Linear(8, 7), nn.ReLU(), nn.Linear(7, 4))
        assert _n(relu) >= _n(two)
        assert _fit(relu) > 0.02, seed
    # the same optimiser fits it once ReLU gets two units per XOR (more parameters): the failure is capacity
    torch.manual_seed(0)
    assert _fit(nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 4))) < 1e-3


def test_a_fresh_activation_is_gelu_of_the_first_channel_half():
    act = TwoInputActivation(hidden=4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 10, 5, 4)
    out = act(x)
    assert out.shape == (3, 5, 5, 4)
    torch.testing.assert_close(out, F.gelu(x[:, :5]))
    # the second half matters once trained: the MLP mixes both inputs
    with torch.no_grad():
        act.weight_out.fill_(0.5)
    assert not torch.allclose(act(x), act(torch.cat([x[:, :5], torch.zeros_like(x[:, 5:])], 1)))


def test_selected_in_the_configuration():
    cfg = resolve_config("small", ["feedforward.activation=two_input", "feedforward.activation_hidden=3"])
    twin = Twin(cfg, [SessionInfo("m1", 4)], seed=0)
    ff = twin.core.feedforward
    assert ff.stem.conv.out_channels == 2 * cfg.feedforward.block_channels[0]  # pairs in, one unit out
    acts = [m for m in ff.modules() if isinstance(m, TwoInputActivation)]
    assert len(acts) == 1 + 3 * (2 + 1) and all(a.hidden == 3 for a in acts)  # stem + each block's layers + transition
    rates = twin(torch.rand(2, 5, 36, 64), torch.rand(2, 5), torch.rand(2, 5), torch.zeros(2, 5, 2), session="m1")
    assert rates.shape == (2, 5, 4) and bool((rates >= 0).all())
    rates.sum().backward()
    assert all(a.weight_in.grad is not None for a in acts)
