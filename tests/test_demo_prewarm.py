"""``fastnn demo``'s second process: the claim protocol on both sides, and a demo that never waits on a lost helper."""

import subprocess
import sys
import textwrap

import pytest

from fastnn.demos import prewarm

# A stand-in helper: busy with section 2 until a file appears, answering claims as prewarm._serve does.
FAKE_HELPER = textwrap.dedent("""
    import os, sys, threading, time
    release, done = sys.argv[1], sys.argv[2]

    def finish():
        while not os.path.exists(release):
            time.sleep(0.01)
        open(done, "w").close()
        print("done 2", flush=True)

    worker = threading.Thread(target=finish)
    worker.start()
    for line in sys.stdin:
        index = line.split()[1]
        print(f"ack {index} {'busy' if index == '2' and worker.is_alive() else 'free'}", flush=True)
""")


def fake(*arguments):
    """The command line of a helper running `arguments` as a script (Prewarmer appends its own arguments)."""
    return [sys.executable, "-c", arguments[0], *arguments[1:]]


def test_a_claim_waits_for_the_section_the_helper_is_compiling(tmp_path):
    release, done = tmp_path / "release", tmp_path / "done"
    helper = prewarm.Prewarmer(["a", "b", "c"], 0, command=fake(FAKE_HELPER, str(release), str(done)))
    try:
        helper.claim(1)  # not the helper's: answered at once
        assert not done.exists()
        release.touch()
        helper.claim(2)
        assert done.exists()
    finally:
        helper.close()
    assert helper._process.returncode == 0


def test_a_helper_that_dies_or_falls_silent_is_not_waited_for(monkeypatch):
    dead = prewarm.Prewarmer(["a", "b"], 0, command=fake("import sys; sys.exit(3)"))
    dead.claim(1)
    dead.close()
    assert dead._process.returncode == 3

    monkeypatch.setattr(prewarm, "ACK_SECONDS", 0.2)
    silent = prewarm.Prewarmer(["a", "b"], 0, command=fake("import time; time.sleep(60)"))
    silent.claim(1)  # no acknowledgement: the demo goes on and the helper is stopped
    assert silent._process.returncode is not None


@pytest.mark.needs_jit
def test_the_helper_runs_the_later_sections_last_first_and_stops_at_a_claimed_one():
    helper = subprocess.Popen([sys.executable, "-m", "fastnn.demos.prewarm", "0", "perceptron", "perceptron",
                               "training"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert helper.stdout.readline().split() == ["done", "2"]
        helper.stdin.write("claim 1\n")
        helper.stdin.close()
        assert helper.wait(timeout=60) == 0
        messages = [line.split() for line in helper.stdout]
    finally:
        helper.kill()
    ack = next(m for m in messages if m[:2] == ["ack", "1"])
    # Section 1 was claimed before the helper started it (never done), while it ran
    # it (done after the answer), or after it finished (done before the answer).
    done = messages.index(["done", "1"]) if ["done", "1"] in messages else None
    answered = messages.index(ack)
    assert ack[2] == "free" and done in (None, answered - 1) or ack[2] == "busy" and done > answered
    assert ["done", "0"] not in messages


# Run in a fresh process, where a kernel has a signature only once this process used it.
WARM_THEN_RUN = textwrap.dedent("""
    import importlib, pkgutil, sys
    from numba.core.registry import CPUDispatcher
    import fastnn.kernels

    def signatures():
        found = {}
        for info in pkgutil.iter_modules(fastnn.kernels.__path__):
            module = importlib.import_module(f"fastnn.kernels.{info.name}")
            for name, value in vars(module).items():
                if isinstance(value, CPUDispatcher):
                    found[f"{info.name}.{name}"] = set(value.signatures)
        return found

    section = importlib.import_module(f"fastnn.demos.{sys.argv[1]}")
    section.warm()
    warmed = signatures()
    section.run(lambda *args: None)
    print(sorted(name for name, used in signatures().items() if used - warmed.get(name, set())))
""")


@pytest.mark.needs_jit
@pytest.mark.parametrize("section", ["recursive", "training"])
def test_a_sections_warm_uses_every_kernel_signature_its_run_uses(section):
    result = subprocess.run([sys.executable, "-c", WARM_THEN_RUN, section], capture_output=True, text=True,
                            timeout=600, check=True)
    assert result.stdout.strip() == "[]"
