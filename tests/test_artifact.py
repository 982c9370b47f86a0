"""Saving and loading: exact round trips, atomic writes, clear errors, never unpickling."""

from __future__ import annotations

import json
import pickle
import pickletools

import numpy as np
import pytest
from conftest import SEED_X, SEED_Y, article_network

import neurocloud as nc
from neurocloud.artifact import ArtifactError, load_artifact


@pytest.fixture
def trained():
    model = nc.Sequential(
        [
            nc.layers.Normalization().adapt(SEED_X),
            nc.layers.Dense(4, activation="gelu"),
            nc.layers.Dropout(0.1),
            nc.layers.Dense(2, activation="softmax"),
        ],
        input_dim=1,
        seed=3,
    )
    model.fit(SEED_X, [0, 0, 1, 1], loss="sparse_categorical_crossentropy", epochs=5)
    return model


def test_round_trip_is_exact(tmp_path, trained):
    path = nc.save(trained, tmp_path / "m", card={"dataset": "seed"})
    assert sorted(p.name for p in path.iterdir()) == [
        "card.json",
        "model.json",
        "weights.safetensors",
    ]
    loaded = nc.load(path)
    assert loaded.get_config() == trained.get_config()
    for key, value in trained.state_dict().items():
        assert loaded.state_dict()[key].tobytes() == value.tobytes()
    assert np.array_equal(loaded.predict(SEED_X), trained.predict(SEED_X))
    card = json.loads((path / "card.json").read_text())
    assert card["dataset"] == "seed" and card["history"]["epochs"] == 5
    meta = load_artifact(path).metadata
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}]


def test_float64_round_trip(tmp_path):
    model = article_network(dtype="float64")
    loaded = nc.load(nc.save(model, tmp_path / "m"))
    assert loaded.dtype == np.float64
    assert np.array_equal(loaded.predict(SEED_X), model.predict(SEED_X))


def test_pickle_delegates_to_safetensors(trained):
    payload = pickle.dumps(trained)
    globals_used = [
        arg for op, arg, _ in pickletools.genops(payload) if op.name == "SHORT_BINUNICODE"
    ]
    assert "Sequential" in globals_used and "from_bytes" in globals_used
    assert b"numpy" not in payload  # weights travel as safetensors bytes, not pickled arrays
    restored = pickle.loads(payload)
    assert np.array_equal(restored.predict(SEED_X), trained.predict(SEED_X))


def test_overwrite_is_atomic_and_leaves_no_temporaries(tmp_path, monkeypatch):
    first, second = article_network(seed=1), article_network(seed=2)
    path = nc.save(first, tmp_path / "m")
    import neurocloud.artifact as artifact

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifact.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        nc.save(second, path)
    # The old model is intact and no temporary directory is left behind.
    assert np.array_equal(nc.load(path).predict(SEED_X), first.predict(SEED_X))
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    monkeypatch.undo()
    nc.save(second, path)
    assert np.array_equal(nc.load(path).predict(SEED_X), second.predict(SEED_X))
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.fixture
def saved(tmp_path):
    return nc.save(article_network(), tmp_path / "m")


def test_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match=r"nope: not a model directory"):
        nc.load(tmp_path / "nope")


@pytest.mark.parametrize("name", ["model.json", "weights.safetensors", "card.json"])
def test_missing_file_is_named(saved, name):
    (saved / name).unlink()
    with pytest.raises(ArtifactError, match=rf"{name}: file is missing"):
        nc.load(saved)


def test_truncated_weights_are_named(saved):
    data = (saved / "weights.safetensors").read_bytes()
    (saved / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"weights.safetensors: unreadable safetensors"):
        nc.load(saved)


def test_truncated_json_is_named(saved):
    text = (saved / "model.json").read_text()
    (saved / "model.json").write_text(text[:40])
    with pytest.raises(ArtifactError, match=r"model.json: not valid JSON"):
        nc.load(saved)


def test_foreign_json_is_named(saved):
    (saved / "model.json").write_text(json.dumps({"format": "keras", "layers": []}))
    with pytest.raises(
        ArtifactError, match=r"model.json: not a neurocloud model \(format is 'keras'"
    ):
        nc.load(saved)


def test_weights_of_another_architecture_are_refused(saved, tmp_path):
    other = nc.save(nc.Sequential([nc.layers.Dense(3)], input_dim=1, seed=0), tmp_path / "o")
    (saved / "weights.safetensors").write_bytes((other / "weights.safetensors").read_bytes())
    with pytest.raises(ArtifactError, match=r"weights.safetensors: .*missing \['layers.1.bias'"):
        nc.load(saved)


def test_pickle_of_a_foreign_payload_is_refused():
    from neurocloud.nn.serialization import from_bytes

    with pytest.raises(ValueError, match="Not a neurocloud model"):
        from_bytes(b"\x00" * 4)


def test_save_refuses_unbuilt_models(tmp_path):
    with pytest.raises(ValueError, match="unbuilt model"):
        nc.save(nc.Sequential([nc.layers.Dense(1)]), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_training_after_loading_continues(saved):
    model = nc.load(saved)
    before = model.evaluate(SEED_X, SEED_Y)
    model.fit(SEED_X, SEED_Y, epochs=50, optimizer=nc.optim.Adam(lr=0.05))
    assert model.evaluate(SEED_X, SEED_Y) < before


def test_float32_normalization_round_trip_is_bit_exact(tmp_path):
    X = np.random.default_rng(0).normal(3.3, 1.7, size=(50, 64))
    model = nc.Sequential(
        [nc.layers.Normalization().adapt(X), nc.layers.Dense(2)], input_dim=64, seed=0
    )
    loaded = nc.load(nc.save(model, tmp_path / "m"))
    assert loaded.predict(X).tobytes() == model.predict(X).tobytes()


def test_save_never_replaces_something_that_is_not_a_model(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match=r"project: exists and is not a neurocloud model"):
        nc.save(article_network(), folder)
    assert (folder / "precious.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match=r"file: exists and is not a directory"):
        nc.save(article_network(), tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "project"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (nc.save(article_network(), empty) / "model.json").exists()


def test_card_of_a_diverged_model_is_strict_json(tmp_path):
    model = article_network()
    history = nc.callbacks.History()
    history.on_epoch_end(model, 0, {"loss": float("nan")})
    model.history = history
    path = nc.save(model, tmp_path / "m", card={"metrics": {"mse": np.float32("inf")}})
    card = json.loads((path / "card.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert card["metrics"]["mse"] is None and card["history"]["loss"]["last"] is None
