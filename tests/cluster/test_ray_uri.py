"""Model paths as URIs: a local copy per node that follows new versions (file:// and
moto's S3 on 127.0.0.1; no Ray cluster needed)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.artifact import load_artifact
from neurocloud.demo import article_network
from neurocloud.ray.uri import Mirror, is_uri, local_path
from neurocloud.serve.repository import discover

from .ray_helpers import upload


def test_file_uri_repository_is_copied_and_follows_new_and_removed_versions(tmp_path):
    remote = tmp_path / "remote"
    nc.save(article_network(seed=0), remote / "seed" / "1")
    mirror = Mirror(remote.as_uri(), cache=tmp_path / "cache")
    local = mirror.sync()
    assert {n: sorted(v) for n, v in discover(local).items()} == {"seed": ["1"]}
    first = (local / "seed" / "1" / "model.json").stat().st_ino

    new = article_network(seed=7)
    nc.save(new, remote / "seed" / "2")
    mirror.sync()
    assert {n: sorted(v) for n, v in discover(local).items()} == {"seed": ["1", "2"]}
    assert (local / "seed" / "1" / "model.json").stat().st_ino == first  # unchanged: kept
    np.testing.assert_array_equal(
        load_artifact(local / "seed" / "2").model.predict([[2.0]]), new.predict([[2.0]])
    )

    nc.save(article_network(seed=9), remote / "seed" / "1")  # rewritten in place
    mirror.sync()
    assert (local / "seed" / "1" / "model.json").stat().st_ino != first

    shutil.rmtree(remote / "seed" / "2")
    mirror.sync()
    assert {n: sorted(v) for n, v in discover(local).items()} == {"seed": ["1"]}

    shutil.rmtree(local / "seed" / "1")  # a cleaner took the copy away: copied again
    mirror.sync()
    assert {n: sorted(v) for n, v in discover(local).items()} == {"seed": ["1"]}


def test_a_version_that_does_not_load_yet_is_not_installed(tmp_path):
    remote = tmp_path / "remote"
    nc.save(article_network(seed=0), remote / "seed" / "1")
    (remote / "seed" / "2").mkdir()
    (remote / "seed" / "2" / "model.json").write_text("{}")  # upload under way
    mirror = Mirror(remote.as_uri(), cache=tmp_path / "cache")
    local = mirror.sync()
    assert sorted(discover(local)["seed"]) == ["1"]
    shutil.rmtree(remote / "seed" / "2")
    nc.save(article_network(seed=7), remote / "seed" / "2")  # the upload completes
    mirror.sync()
    assert sorted(discover(local)["seed"]) == ["1", "2"]


def test_a_uri_without_models_is_named_in_the_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no model here")
    with pytest.raises(ValueError, match=r"expected a model folder.*found 1 file"):
        local_path((tmp_path / "empty").as_uri())
    with pytest.raises(ValueError, match="expected a readable folder of models at file://"):
        Mirror((tmp_path / "missing").as_uri()).sync()


def test_s3_model_copied_once_per_node_cache(s3, tmp_path, monkeypatch):
    client, uri = s3
    model = article_network(seed=3)
    upload(client, nc.save(model, tmp_path / "seed"), "one/seed")
    monkeypatch.setenv("NEUROCLOUD_MODEL_CACHE", str(tmp_path / "cache"))
    local = local_path(uri("one/seed"))
    assert local.is_relative_to(tmp_path / "cache")
    got = load_artifact(local).model.predict([[4.5]])
    np.testing.assert_array_equal(got, model.predict([[4.5]]))
    assert local.name == "seed"  # served under the name it has at the URI
    state = json.loads((local.parent.parent / "synced.json").read_text())
    assert list(state) == ["."]
    assert local_path(uri("one/seed")) == local  # a second process of the node reuses it


def test_paths_and_drives_are_not_uris():
    assert is_uri("s3://b/p") and is_uri("file:///tmp/m") and is_uri("gs://b/p")
    assert not is_uri("/shared/models") and not is_uri("models/seed") and not is_uri("C:\\m")


def test_a_single_model_uri_is_served_under_its_own_name(tmp_path):
    remote = tmp_path / "remote"
    nc.save(article_network(seed=0), remote / "digits")
    nc.save(article_network(seed=0), remote / "seed" / "1")
    single = Mirror((remote / "digits").as_uri(), cache=tmp_path / "cache").sync()
    versions = Mirror((remote / "seed").as_uri(), cache=tmp_path / "cache").sync()
    assert list(discover(single)) == ["digits"] and list(discover(versions)) == ["seed"]


def test_an_unreadable_state_file_copies_again_and_the_default_cache_is_private(
    tmp_path, monkeypatch
):
    import os

    remote = tmp_path / "remote"
    nc.save(article_network(seed=0), remote / "seed" / "1")
    mirror = Mirror(remote.as_uri(), cache=tmp_path / "cache")
    mirror.sync()
    (mirror.home / "synced.json").write_text('{"seed/1": [')  # a crash mid-write, before
    assert sorted(discover(mirror.sync())["seed"]) == ["1"]
    assert json.loads((mirror.home / "synced.json").read_text())

    monkeypatch.delenv("NEUROCLOUD_MODEL_CACHE", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    home = Mirror(remote.as_uri()).home.parent
    assert home.name == f"neurocloud-models-{os.getuid()}"
    assert home.stat().st_mode & 0o777 == 0o700
    home.chmod(0o777)  # someone opened it up: refused, naming the way out
    with pytest.raises(ValueError, match="NEUROCLOUD_MODEL_CACHE"):
        Mirror(remote.as_uri())
