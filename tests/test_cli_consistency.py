"""One consistent command line: --quiet everywhere, defaults shown, --model always a trained
twin or a virtual mouse (never an architecture), times in seconds or with both units stated."""

import click
from click.testing import CliRunner

from twinlab.cli import main


def _commands(group=main, prefix=("twinlab",)):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_has_quiet_and_one_meaning_of_model():
    cmds = list(_commands())
    assert len(cmds) > 15
    for path, cmd in cmds:
        opts = {o.opts[0]: o for o in cmd.params if isinstance(o, click.Option)}
        assert "--quiet" in opts, " ".join(path)
        if "--model" in opts:
            text = (opts["--model"].help or "").lower()
            assert "architecture" not in text and any(w in text for w in ("checkpoint", "twin", "sim:")), " ".join(path)
        for name, o in opts.items():
            if any(w in name for w in ("lag", "skip", "gap", "horizon", "context", "stride", "duration")):
                text = ((o.help or "") + name).lower()
                assert any(u in text for u in ("second", "-s", " s ", "frames")), (" ".join(path), name)


def test_defaults_are_shown_in_help():
    res = CliRunner().invoke(main, ["import", "nwb", "--help"])
    assert "[default: 10.0]" in res.output and "[default: clip]" in res.output
    res = CliRunner().invoke(main, ["train", "--help"])
    assert "--architecture" in res.output and "--model " not in res.output
