"""CLI surface: every flag documents its default; bad flags are argparse errors, not tracebacks."""

from __future__ import annotations

import argparse

import pytest

from model_export.__main__ import build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_option_states_its_default_or_that_it_is_required():
    parser = build_parser()
    commands = _subparsers(parser)
    assert sorted(commands) == ["context", "keras", "pytorch", "verify"]
    for name, sub in [("", parser), *commands.items()]:
        for action in sub._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if action.option_strings == ["-h", "--help"]:
                continue
            assert "Default" in action.help or "Required" in action.help, (name, action.dest)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pytorch", "--name", "digits"], "--model-dir"),
        (["pytorch", "--model-dir", "x", "--name", "d", "--version", "0"], "must be >= 1"),
        (["keras", "--model-dir", "x", "--name", "d", "--layout", "flat"], "invalid choice"),
        (["verify", "x.tar.gz", "--atol", "-1"], "must be > 0"),
    ],
)
def test_bad_flags_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_model_dir_is_a_one_line_error(tmp_path, capsys):
    code = main(["pytorch", "--model-dir", str(tmp_path / "nope"), "--name", "digits"])
    err = capsys.readouterr().err
    assert code == 2
    assert "is not a directory" in err and "Traceback" not in err
