"""What the model folder watcher does with a hostile or half-written repository: folders that
are not versions are ignored (logged once), a failed scan unloads nothing, readiness is never
ready while a served model is gone, and a version completed late (``card.json`` last) or that
failed once is loaded on a later check."""

from __future__ import annotations

import asyncio
import logging
import shutil

import numpy as np
import pytest
from serve_helpers import app_for, article_model, running

import neurocloud as nc
from neurocloud.serve import repository as repository_module
from neurocloud.serve.model_folders import discover

BODY = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}


def _run(root, scenario):
    app = app_for(root)  # no watcher: each test drives the checks itself

    async def main():
        async with running(app) as client:
            return await scenario(client, app.state.neurocloud.repository)

    return asyncio.run(main())


async def _health(client) -> tuple[int, int]:
    return (await client.get("/ping")).status_code, (
        await client.get("/v2/health/ready")
    ).status_code


def test_a_folder_that_is_not_a_decimal_version_is_ignored_and_logged_once(tmp_path, caplog):
    one = nc.save(article_model(), tmp_path / "seed" / "1")
    shutil.copytree(one, tmp_path / "seed" / "²")  # "²".isdigit() is true, int("²") fails
    (tmp_path / "seed" / "notes").mkdir()
    (tmp_path / "seed" / ".1.tmp-1-abc").mkdir()  # a save in progress: silently skipped
    with caplog.at_level(logging.WARNING, logger="neurocloud.serve"):
        for _ in range(3):
            assert {k: sorted(v) for k, v in discover(tmp_path / "seed").items()} == {"seed": ["1"]}
    warned = [r.getMessage() for r in caplog.records if "not a version folder" in r.getMessage()]
    assert len(warned) == 2 and any("²" in m for m in warned) and any("notes" in m for m in warned)


def test_a_stray_folder_never_takes_the_other_models_down(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    nc.save(article_model(1), root / "other")

    async def scenario(client, repository):
        shutil.copytree(root / "seed" / "1", root / "seed" / "²")  # a model in it too
        for _ in range(3):
            await repository.refresh()
        infer = await client.post("/v2/models/seed/infer", json=BODY)
        other = await client.post("/v2/models/other/infer", json=BODY)
        return await _health(client), infer.status_code, other.status_code

    assert _run(root, scenario) == ((200, 200), 200, 200)


def test_a_scan_that_fails_keeps_the_models_served(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")

    def broken(path):
        raise OSError(5, "Input/output error", str(path))

    async def scenario(client, repository):
        monkeypatch.setattr(repository_module, "scan", broken)
        for _ in range(3):
            await repository.refresh()
        infer = await client.post("/v2/models/seed/infer", json=BODY)
        return await _health(client), infer.status_code

    assert _run(root, scenario) == ((200, 200), 200)


def test_readiness_is_not_ready_while_a_served_model_is_gone(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    nc.save(article_model(1), root / "other")

    async def scenario(client, repository):
        broken = nc.save(article_model(2), root / "seed" / "2")
        (broken / "weights.safetensors").write_bytes(b"oops")
        await repository.refresh()
        before = await _health(client)
        shutil.rmtree(root / "seed" / "1")
        await repository.refresh()
        await repository.refresh()  # gone on two checks: unloaded
        gone = await _health(client)
        nc.save(article_model(2), root / "seed" / "2")
        await repository.refresh()
        return before, gone, await _health(client)

    before, gone, repaired = _run(root, scenario)
    assert before == (200, 200)
    assert gone == (503, 503)  # "seed" is still there but nothing of it can be served
    assert repaired == (200, 200)


def test_a_version_whose_card_is_written_last_is_loaded(tmp_path):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    complete = nc.save(article_model(3), tmp_path / "elsewhere")

    async def scenario(client, repository):
        (root / "seed" / "2").mkdir()
        for name in ("model.json", "weights.safetensors"):
            shutil.copy(complete / name, root / "seed" / "2" / name)
        await repository.refresh()
        early = await client.post("/v2/models/seed/versions/2/infer", json=BODY)
        shutil.copy(complete / "card.json", root / "seed" / "2" / "card.json")
        await repository.refresh()
        late = await client.post("/v2/models/seed/versions/2/infer", json=BODY)
        return early.status_code, late.status_code, late.json()

    early, late, answer = _run(root, scenario)
    assert early == 503 and late == 200
    assert answer["outputs"][0]["data"] == pytest.approx(
        article_model(3).predict([[1.0]]).ravel().tolist(), rel=1e-6
    )


def test_a_failed_load_is_retried_with_backoff_without_any_change(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    nc.save(article_model(0), root / "seed" / "1")
    real = repository_module.load_artifact
    calls = []

    def flaky(path):
        calls.append(path.name)
        if calls.count("2") == 1:
            raise OSError("a transient read error")
        return real(path)

    async def scenario(client, repository):
        monkeypatch.setattr(repository_module, "load_artifact", flaky)
        nc.save(article_model(4), root / "seed" / "2")
        monkeypatch.setattr(repository_module, "RETRY_FIRST_S", 3600.0)
        await repository.refresh()
        await repository.refresh()  # unchanged and not yet due: not retried
        waiting = calls.count("2")
        repository._failed["seed", "2"].retry_at = 0.0  # the backoff has elapsed
        await repository.refresh()
        infer = await client.post("/v2/models/seed/versions/2/infer", json=BODY)
        return waiting, calls.count("2"), infer.status_code, repository._failed

    waiting, total, status, failed = _run(root, scenario)
    assert (waiting, total, status, failed) == (1, 2, 200, {})


def test_a_single_model_folder_saved_over_is_reloaded(tmp_path):
    path = nc.save(article_model(0), tmp_path / "seed")

    async def scenario(client, repository):
        nc.save(article_model(6), path)  # swapped in by one exchange of directories
        await repository.refresh()
        return (await client.post("/invocations", json={"x": [1.0]})).json()

    answer = _run(path, scenario)
    expected = article_model(6).predict([[1.0]]).ravel().tolist()
    assert np.ravel(answer["y"]).tolist() == pytest.approx(expected, rel=1e-6)


def test_the_record_of_ignored_folders_holds_only_what_is_present(tmp_path, caplog):
    from neurocloud.serve import model_folders

    nc.save(article_model(), tmp_path / "seed" / "1")
    with caplog.at_level(logging.WARNING, logger="neurocloud.serve"):
        for i in range(20):  # stray folders come and go: the record does not grow
            (tmp_path / "seed" / f"stray-{i}").mkdir()
            discover(tmp_path / "seed")
            (tmp_path / "seed" / f"stray-{i}").rmdir()
            discover(tmp_path / "seed")
        assert str(tmp_path / "seed") not in model_folders._ignored
        (tmp_path / "seed" / "stray-0").mkdir()  # back again: reported again, once
        discover(tmp_path / "seed")
        discover(tmp_path / "seed")
    assert model_folders._ignored[str(tmp_path / "seed")] == {"stray-0"}
    warned = [r.getMessage() for r in caplog.records if "stray-0" in r.getMessage()]
    assert len(warned) == 2
