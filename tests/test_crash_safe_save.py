"""``nc.save`` over an existing model, killed with SIGKILL at random moments and at each step
of the replacement (with ``renameat2`` and with the two-rename fallback): every outcome loads
as the old or the new model exactly, and the next save leaves no leftovers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import neurocloud as nc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")

#: A child that builds the two models once, then forks a saver per request: each kill costs a
#: fork, not a Python start. Protocol: "<mode> <step> <path> <first model>" on stdin -> it
#: prints the saver's pid, then "reaped <signal>" once the saver is dead.
ZYGOTE = textwrap.dedent(
    """
    import os, signal, sys
    import neurocloud as nc
    from neurocloud import atomic_dir

    def model(seed):
        return nc.Sequential([nc.layers.Dense(512, activation="relu"), nc.layers.Dense(512),
                              nc.layers.Dense(4)], input_dim=512, seed=seed)

    models = [model(1), model(2)]
    print("ready", flush=True)
    for line in sys.stdin:
        mode, step, target, first = line.split()
        pid = os.fork()
        if pid == 0:
            if mode == "fallback":
                atomic_dir._RENAMEAT2 = None
            if step != "-":
                def kill(name, step=step):
                    if name == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                atomic_dir.on_step = kill
            i = int(first)
            while True:  # alternate the two models until killed, starting with `first`
                nc.save(models[i % 2], target)
                i += 1
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print("reaped", os.WIFSIGNALED(status) and os.WTERMSIG(status), flush=True)
    """
)


def _model(seed: int) -> nc.Sequential:
    return nc.Sequential(
        [nc.layers.Dense(512, activation="relu"), nc.layers.Dense(512), nc.layers.Dense(4)],
        input_dim=512,
        seed=seed,
    )


def _which(path, expected: list[list[np.ndarray]]) -> int:
    got = nc.load(path).get_weights()
    for i, weights in enumerate(expected):
        if all(np.array_equal(a, b) for a, b in zip(got, weights)):
            return i
    raise AssertionError(f"{path} holds neither the old nor the new model")


@pytest.mark.timeout(180)
def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_model(tmp_path):
    expected = [_model(1).get_weights(), _model(2).get_weights()]
    target = tmp_path / "model"
    nc.save(_model(1), target)
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    rng = random.Random(0)
    outcomes, current = [], 0
    try:
        assert zygote.stdout.readline().strip() == "ready"
        steps = ["written", "exchanged", "synced"]
        fallback = ["written", "moved-aside", "renamed", "synced"]
        plan = [("exchange", "-")] * 30 + [("fallback", "-")] * 6
        plan += [("exchange", s) for s in steps] + [("fallback", s) for s in fallback]
        for mode, step in plan:
            zygote.stdin.write(f"{mode} {step} {target} {1 - current}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            if step == "-":
                time.sleep(rng.uniform(0.0, 0.1))  # one save of this model takes ~10-50 ms
                os.kill(pid, signal.SIGKILL)
            # with a step, the saver kills itself there
            assert zygote.stdout.readline().split() == ["reaped", str(int(signal.SIGKILL))]
            now = _which(target, expected)
            if step != "-":  # killed at that step of its first save
                switched = step not in ("written", "moved-aside")
                assert now == (1 - current if switched else current), (mode, step)
            outcomes.append(now)
            current = now
    finally:
        zygote.stdin.close()
        zygote.kill()
        zygote.wait()
        zygote.stdout.close()
    assert len(outcomes) == len(plan) >= 30
    assert set(outcomes) == {0, 1}  # the kills landed both before and after the switch
    nc.save(_model(1), target)  # the next save clears what the killed ones left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
