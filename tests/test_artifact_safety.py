"""Loading a hostile or damaged model folder: every failure is an ArtifactError naming the file,
decided before anything large is allocated; symlinks out of the folder, FIFOs and sockets are
refused; a crash between the steps of a save leaves the old or the new model; resumed training
is bit for bit, shuffling and Dropout included."""

from __future__ import annotations

import json
import os
import socket
import stat
import tracemalloc

import numpy as np
import pytest

import neurocloud as nc
from neurocloud import atomic_dir
from neurocloud.artifact import ArtifactError, load_artifact


def _small(seed: int = 0) -> nc.Sequential:
    return nc.Sequential(
        [nc.layers.Dense(3, activation="tanh"), nc.layers.Dense(1)], input_dim=2, seed=seed
    )


@pytest.fixture
def saved(tmp_path):
    return nc.save(_small(), tmp_path / "m")


def _edit_model_json(path, edit) -> None:
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    (path / "model.json").write_text(json.dumps(meta))


# --- declared sizes are checked before anything is allocated --------------------------------
@pytest.mark.parametrize("units", [150_000_000, 1_000_000_000])
def test_a_huge_declared_layer_is_refused_without_allocating_it(saved, units):
    def widen(meta):
        meta["model"]["layers"][0]["config"]["units"] = units

    _edit_model_json(saved, widen)
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError, match=r"(model\.json|weights\.safetensors): "):
            nc.load(saved)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_a_declared_size_that_the_weights_do_not_hold_names_both(saved):
    _edit_model_json(saved, lambda m: m["model"]["layers"][0]["config"].update(units=4))
    with pytest.raises(ArtifactError, match=r"declares layers\.0\.kernel of shape \(2, 4\).*"):
        nc.load(saved)


def test_a_model_json_nested_100000_deep_is_an_artifact_error(saved):
    (saved / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match=r"model\.json: nested too deeply"):
        nc.load(saved)


@pytest.mark.parametrize(
    ("key", "value"), [("extra", []), ("extra", "x"), ("model", 3), ("inputs", {})]
)
def test_fields_of_the_wrong_type_are_an_artifact_error(saved, key, value):
    _edit_model_json(saved, lambda m: m.update({key: value}))
    with pytest.raises(ArtifactError, match=rf"model\.json: '{key}' must be"):
        nc.load(saved)


# --- entries of the folder ---------------------------------------------------------------
def test_a_symlink_out_of_the_model_folder_is_refused(saved, tmp_path):
    outside = tmp_path / "secret.safetensors"
    (saved / "weights.safetensors").rename(outside)
    (saved / "weights.safetensors").symlink_to(outside)
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: a symbolic link to .*outside"):
        nc.load(saved)
    (saved / "card.json").unlink()
    (saved / "card.json").symlink_to("/etc/passwd")
    with pytest.raises(ArtifactError, match=r"card\.json: a symbolic link to /etc/passwd"):
        nc.load(saved)


def test_a_symlink_inside_the_model_folder_is_followed(saved):
    (saved / "weights.safetensors").rename(saved / "w.bin")
    (saved / "weights.safetensors").symlink_to("w.bin")
    X = np.ones((2, 2))
    np.testing.assert_array_equal(nc.load(saved).predict(X), _small().predict(X))


def test_a_fifo_is_refused_saying_what_it_is(saved):
    (saved / "weights.safetensors").unlink()
    os.mkfifo(saved / "weights.safetensors")
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: is a FIFO \(named pipe\)"):
        nc.load(saved)  # refused before opening: opening a FIFO would block


def test_a_socket_and_a_folder_are_refused_saying_what_they_are(saved):
    (saved / "card.json").unlink()
    (saved / "card.json").mkdir()
    with pytest.raises(ArtifactError, match=r"card\.json: is a directory, expected a regular"):
        nc.load(saved)
    (saved / "card.json").rmdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(saved / "card.json"))
        with pytest.raises(ArtifactError, match=r"card\.json: is a socket"):
            nc.load(saved)
    finally:
        sock.close()


def test_a_device_is_refused_saying_what_it_is(saved):
    (saved / "weights.safetensors").unlink()
    try:  # the same device as /dev/null
        os.mknod(saved / "weights.safetensors", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: is a character device"):
        nc.load(saved)


def test_an_optimizer_fifo_is_refused_not_ignored(saved):
    os.mkfifo(saved / "optimizer.safetensors")
    with pytest.raises(ArtifactError, match=r"optimizer\.safetensors: is a FIFO"):
        load_artifact(saved).load_optimizer()


# --- crash between the steps of a replacement --------------------------------------------
class Crash(BaseException):
    """Stands for the process dying at one step (BaseException: nothing may catch it)."""


def _weights(path) -> list[np.ndarray]:
    return load_artifact(path).model.get_weights()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_crash_between_any_two_steps_of_a_save_leaves_the_old_or_the_new_model(
    tmp_path, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(atomic_dir, "_RENAMEAT2", None)
    old, new = _small(1), _small(2)
    steps = []
    monkeypatch.setattr(atomic_dir, "on_step", steps.append)
    nc.save(old, tmp_path / "m")
    steps.clear()
    nc.save(new, tmp_path / "m")  # the steps of replacing a model
    assert steps[-1] == "synced" and len(steps) >= 3
    for step in dict.fromkeys(steps):
        path = nc.save(old, tmp_path / step)

        def crash(name, step=step):
            if name == step:
                raise Crash(step)

        monkeypatch.setattr(atomic_dir, "on_step", crash)
        with pytest.raises(Crash):
            nc.save(new, path)
        monkeypatch.setattr(atomic_dir, "on_step", lambda name: None)
        monkeypatch.setattr(atomic_dir, "_alive", lambda pid: False)  # the writer is gone
        got = _weights(path)  # loads (recovering an old folder left aside)
        outcomes = [
            all(np.array_equal(a, b) for a, b in zip(got, m.get_weights())) for m in (old, new)
        ]
        assert any(outcomes), f"crash after {step!r}: neither the old nor the new model"
        nc.save(new, path)  # the next save cleans what the crash left
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{step}")) == []
        monkeypatch.undo()
        if not exchange:
            monkeypatch.setattr(atomic_dir, "_RENAMEAT2", None)


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    path = nc.save(_small(), tmp_path / "m")
    dead = 2**22 + 12345  # above the default pid_max: no such process
    for name in (f".m.tmp-{dead}-abcdef12", ".m.old-0123abcd", f".m.old-{dead}-00ff00ff"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
    mine = tmp_path / f".m.tmp-{os.getpid()}-feedbeef"  # a save in progress: kept
    mine.mkdir()
    nc.save(_small(1), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "m"]


def test_a_missing_model_with_its_old_folder_left_aside_is_recovered_on_load(tmp_path):
    path = nc.save(_small(3), tmp_path / "m")
    path.rename(tmp_path / ".m.old-4194999-0000beef")  # a save killed between its renames
    np.testing.assert_array_equal(nc.load(path).get_weights()[0], _small(3).get_weights()[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# --- resuming training from disk ---------------------------------------------------------
def _dropout_model() -> nc.Sequential:
    return nc.Sequential(
        [
            nc.layers.Dense(8, activation="relu"),
            nc.layers.Dropout(0.3),
            nc.layers.Dense(1),
        ],
        input_dim=3,
        seed=7,
    )


def test_resumed_fit_with_shuffling_and_dropout_equals_an_uninterrupted_one(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    settings = {"batch_size": 8, "shuffle": True, "loss": "mse"}
    straight = _dropout_model()
    straight.fit(X, y, optimizer=nc.optim.Adam(lr=0.01), epochs=6, **settings)

    first = _dropout_model()
    opt = nc.optim.Adam(lr=0.01)
    first.fit(X, y, optimizer=opt, epochs=3, **settings)
    artifact = load_artifact(nc.save(first, tmp_path / "m", optimizer=opt))
    resumed = artifact.model
    resumed.fit(X, y, optimizer=artifact.load_optimizer(), epochs=3, **settings)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_pickled_estimator_keeps_its_generator_state(tmp_path):
    import pickle

    from sklearn.exceptions import ConvergenceWarning

    from neurocloud.sklearn import NeuralNetRegressor

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    reg = NeuralNetRegressor((4,), dropout=0.2, max_epochs=2, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    copy = pickle.loads(pickle.dumps(reg))
    assert copy.model_.rng.bit_generator.state == reg.model_.rng.bit_generator.state
