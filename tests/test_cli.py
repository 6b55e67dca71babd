"""The ``fastnn`` command: help, ``fastnn info`` and every ``fastnn demo`` section, in-process."""

import pytest

from fastnn import cli
from fastnn.demos import SECTIONS

# "training" takes seconds compiled, far longer as plain Python.
MARKS = {"training": [pytest.mark.needs_jit]}
# test_tutorial_cnn runs the cnn section, and test_recursive the recursive
# section's tree task (its gradient check is below).
TESTED_ELSEWHERE = {"cnn", "recursive"}


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in cli.COMMANDS)


def test_info_prints_versions_and_numba_settings(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numba" in out and "numba_threads" in out and "numba_cache_dir" in out


@pytest.mark.parametrize("section", [pytest.param(s, marks=MARKS.get(s, [])) for s in SECTIONS
                                     if s not in TESTED_ELSEWHERE])
def test_demo_section_runs(section, capsys):
    assert cli.main(["demo", "--only", section]) == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 1 and "fastnn demo finished" in out


def test_unknown_demo_section_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--only", "no-such-section"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("section", ["rnn", "lstm", "recursive"])
def test_the_sequence_sections_gradient_checks_agree_with_central_differences(section):
    from importlib import import_module

    assert import_module(f"fastnn.demos.{section}").gradient_check() < 1e-5
