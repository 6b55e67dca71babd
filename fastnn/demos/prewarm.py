"""Compile the demo's later sections in a second process while the first ones run.

On a first run nearly all of ``fastnn demo``'s time is Numba compiling, one
kernel after another on one core.  A second process runs the later sections
silently, last section first, so that their kernels land in Numba's on-disk
cache; the demo itself runs the sections in order, and by the time it
reaches a late section that section loads from the cache.  The two meet in
the middle: the demo claims each section before running it, the helper
stops at the first section the demo has claimed, and when the demo claims
the section the helper is busy with, it waits for that section rather than
compile the same kernels twice.

Nothing depends on the helper for correctness: if it fails to start, dies or
falls silent, the demo compiles what it needs itself.

A section that trains for a while may define ``warm()``, which compiles the
same kernels on a smaller problem; the helper runs that instead of ``run``.

Protocol, one line per message: the demo writes ``claim INDEX`` to the
helper's stdin; the helper answers ``ack INDEX busy`` or ``ack INDEX free``
and writes ``done INDEX`` after each section it finishes.
"""

import contextlib
import io
import os
import queue
import subprocess
import sys
import threading

# A helper that does not acknowledge a claim within this many seconds is
# presumed stuck; one busy with a section gets as long as a cold section can take.
ACK_SECONDS = 30
SECTION_SECONDS = 600


class Prewarmer:
    """The demo's side: a helper for the `sections` (module names) after index `running`.

    Call `claim` before running each section, and `close` at the end.
    """

    def __init__(self, sections, running, command=None):
        # The helper finds fastnn as any process would; if it cannot, it exits
        # at once and the demo compiles everything itself.
        env = dict(os.environ)
        # The helper's results are thrown away, only its compiled code is kept:
        # one thread of each kind keeps it to one core, the other is the demo's.
        env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        command = command or [sys.executable, "-m", __name__]
        self._process = subprocess.Popen(
            command + [str(running)] + list(sections), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)
        self._messages = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self._process.stdout:
            self._messages.put(line.split())
        self._messages.put(None)  # end of output: the helper is gone

    def _next(self, timeout):
        """The helper's next message, or None when it is gone or silent for `timeout` seconds."""
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def claim(self, index):
        """Tell the helper the demo runs section `index` now; return once the helper is not compiling it."""
        if self._process.poll() is not None:
            return
        try:
            self._process.stdin.write(f"claim {index}\n")
            self._process.stdin.flush()
        except OSError:  # the helper exited between the check and the write
            return
        busy = None
        while busy is None:
            message = self._next(ACK_SECONDS)
            if message is None:
                return self.close()
            if message[:2] == ["ack", str(index)]:
                busy = message[2] == "busy"
        while busy:
            message = self._next(SECTION_SECONDS)
            if message is None:
                return self.close()
            busy = message != ["done", str(index)]

    def close(self):
        """End the helper: it has nothing left to do once the demo has claimed the last section."""
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _serve(running, sections):
    """The helper's side: run `sections` after index `running` silently, last first, until the demo claims one."""
    import importlib

    lock = threading.Lock()
    state = {"claimed": running, "current": None}
    channel = sys.stdout

    def send(line):
        channel.write(line + "\n")
        channel.flush()

    def listen():
        for line in sys.stdin:
            index = int(line.split()[1])
            with lock:
                state["claimed"] = max(state["claimed"], index)
                send(f"ack {index} {'busy' if state['current'] == index else 'free'}")
        with lock:  # stdin closed: the demo is done
            state["claimed"] = len(sections)

    threading.Thread(target=listen, daemon=True).start()
    for index in range(len(sections) - 1, -1, -1):
        with lock:
            if index <= state["claimed"]:
                break
            state["current"] = index
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            section = importlib.import_module(f"fastnn.demos.{sections[index]}")
            if hasattr(section, "warm"):
                section.warm()
            else:
                section.run(lambda *args: None)
        with lock:
            state["current"] = None
            send(f"done {index}")


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
