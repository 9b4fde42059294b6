"""Resumable state: everything a run needs comes back exactly; broken files are refused."""

import pytest
import torch

from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, TwinConfig, save_checkpoint
from twinlab.train import read_state, save_state


def _twin_and_optimizer(kind, frozen=False):
    twin = Twin(TwinConfig.small(), [SessionInfo("a", 5), SessionInfo("b", 3)], seed=4)
    twin.freeze_core(frozen)
    params = [p for p in twin.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True) if kind == "sgd"
           else torch.optim.AdamW(params, lr=1e-3))
    for p in params:  # one step, so that momentum / moment buffers exist
        p.grad = torch.randn_like(p)
    opt.step()
    return twin, opt


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_state_round_trips_weights_optimizer_and_settings(tmp_path, kind):
    twin, opt = _twin_and_optimizer(kind, frozen=True)
    torch.manual_seed(11)
    path = save_state(tmp_path / "state.safetensors", twin, opt, {"step": 17, "note": "x"}, ["n1"])
    expected_rng = torch.get_rng_state()
    torch.manual_seed(0)
    st = read_state(path)
    assert st.step == 17 and st.training["note"] == "x" and st.param_names == ["n1"]
    back = st.twin()
    assert back.core_frozen and list(back.sessions) == ["a", "b"]
    for k, v in twin.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    opt2 = type(opt)([p for p in back.parameters() if p.requires_grad], lr=0.5)
    opt2.load_state_dict(st.optimizer_state_dict())
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"]
    for idx, s in a["state"].items():
        for name, v in s.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][idx][name])), (idx, name)
    st.restore_rng()
    assert torch.equal(torch.get_rng_state(), expected_rng)
    assert not (tmp_path / ".state.safetensors").exists() and len(list(tmp_path.iterdir())) == 1


def test_broken_and_foreign_files_are_refused(tmp_path):
    twin, opt = _twin_and_optimizer("sgd")
    path = save_state(tmp_path / "state.safetensors", twin, opt, {"step": 1})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputError, match="truncated"):
        read_state(cut)
    ckpt = save_checkpoint(twin, tmp_path / "twin.safetensors")
    with pytest.raises(InputError, match="not a twinlab training state"):
        read_state(ckpt)
    with pytest.raises(InputError, match="does not exist"):
        read_state(tmp_path / "none.safetensors")
