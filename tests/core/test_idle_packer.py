"""core.engine.idle_packer: packing steps run in the background, in order, never during a generation, and stop
cleanly."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from vsearch_app.core.engine.idle_packer import IdlePacker


class Steps:
    """Recording steps; each notes whether a generation was running when it ran."""

    def __init__(self, count: int, fail_at: int | None = None, hold: threading.Event | None = None):
        self.done: list[int] = []
        self.overlapped = False
        self.generating = False
        self.fail_at = fail_at
        self.hold = hold
        self.started = threading.Event()
        self.steps = [self._step(i) for i in range(count)]

    def _step(self, index: int):
        def run():
            self.started.set()
            if self.hold is not None:
                self.hold.wait(10)
            if self.generating:
                self.overlapped = True
            if index == self.fail_at:
                raise RuntimeError("oneDNN said no")
            self.done.append(index)

        return run


def test_steps_run_in_order_in_the_background_once_started():
    steps = Steps(5)
    packer = IdlePacker(steps.steps, threading.Lock())
    assert packer.pending == 5 and steps.done == []  # nothing before start
    assert packer.wait(10)
    assert steps.done == [0, 1, 2, 3, 4] and packer.pending == 0
    packer.close()


def test_no_step_runs_while_a_generation_holds_the_model():
    steps = Steps(40)
    packer = IdlePacker(steps.steps, threading.Lock())
    with packer.generation():
        steps.generating = True
        packer.start()
        time.sleep(0.2)  # the packer thread is up and must be waiting
        assert steps.done == []
        steps.generating = False
    assert packer.wait(10)
    for _ in range(20):  # generations between steps: each one waits for the step in progress, then runs alone
        with packer.generation():
            steps.generating = True
            time.sleep(0.001)
            steps.generating = False
    assert not steps.overlapped and steps.done == list(range(40))
    packer.close()


def test_a_waiting_generation_goes_before_the_next_step():
    hold = threading.Event()
    steps = Steps(3, hold=hold)
    packer = IdlePacker(steps.steps, threading.Lock())
    packer.start()
    assert steps.started.wait(10)  # step 0 is in progress, holding the model
    order = []

    def generation():
        with packer.generation():
            order.append(("generation", list(steps.done)))

    worker = threading.Thread(target=generation)
    worker.start()
    time.sleep(0.1)
    hold.set()
    worker.join(10)
    assert packer.wait(10)
    assert order == [("generation", [0])]  # after the step in progress, before steps 1 and 2
    packer.close()


def test_close_stops_after_the_step_in_progress_and_joins():
    hold = threading.Event()
    steps = Steps(5, hold=hold)
    packer = IdlePacker(steps.steps, threading.Lock(), name="test-packer")
    packer.start()
    assert steps.started.wait(10)
    closer = threading.Thread(target=packer.close)
    closer.start()
    time.sleep(0.1)
    assert closer.is_alive()  # waiting for the step in progress
    hold.set()
    closer.join(10)
    assert not closer.is_alive()
    assert steps.done == [0] and packer.pending == 4
    assert not any(t.name == "test-packer" for t in threading.enumerate())
    assert packer.wait(1) is False  # ended without finishing
    packer.start()  # a closed packer does not start again
    assert steps.done == [0]


def test_close_before_start_leaves_nothing_to_wait_for():
    steps = Steps(2)
    packer = IdlePacker(steps.steps, threading.Lock())
    packer.close()
    assert packer.wait(1) is False and steps.done == []


def test_a_failing_step_ends_packing_and_keeps_what_was_done(caplog):
    steps = Steps(4, fail_at=2)
    packer = IdlePacker(steps.steps, threading.Lock())
    assert packer.wait(10) is False
    assert steps.done == [0, 1] and packer.pending == 2
    assert "packing the caption model failed" in caplog.text
    with packer.generation():  # the model lane is free again
        pass
    packer.close()


def test_nothing_to_pack_is_done_at_once():
    packer = IdlePacker([], threading.Lock())
    assert packer.wait(0) is True and packer.pending == 0
    packer.close()


def test_a_packer_left_running_is_stopped_cleanly_at_interpreter_exit():
    """A script that never closes its Captioner: the atexit hook stops packing after the step in progress."""
    code = (
        "import threading, time\n"
        "from vsearch_app.core.engine.idle_packer import IdlePacker\n"
        "def step():\n"
        "    time.sleep(1.0)\n"
        "    print('step', flush=True)\n"
        "packer = IdlePacker([step] * 50, threading.Lock())\n"
        "packer.start()\n"
        "time.sleep(0.5)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    # The step in progress at exit finished (not killed half-way, which aborts a process inside a oneDNN call), and
    # no further step began.
    assert proc.stdout.count("step") == 1
