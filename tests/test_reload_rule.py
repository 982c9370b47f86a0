"""The reload rule the README states: every served folder is reloaded when it is replaced
(``nc.save`` over it), a single model directory included, and new numbered versions are
added; the server logs each reload."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from serve_helpers import app_for, article_model, running

import neurocloud as nc


def test_a_single_model_directory_replaced_by_nc_save_is_reloaded_and_logged(tmp_path, caplog):
    path = nc.save(article_model(0), tmp_path / "seed")
    app = app_for(path, reload_interval_s=0.05)

    async def answer(client) -> float:
        response = await client.post("/invocations", json={"x": [2.0]})
        assert response.status_code == 200
        return float(np.ravel(response.json()["y"])[0])

    async def main():
        async with running(app) as client:
            before = await answer(client)
            await asyncio.to_thread(nc.save, article_model(5), path)
            deadline = asyncio.get_running_loop().time() + 10
            while abs(await answer(client) - before) < 1e-9:
                assert asyncio.get_running_loop().time() < deadline, "not reloaded"
                await asyncio.sleep(0.02)
            return before, await answer(client)

    with caplog.at_level(logging.INFO, logger="neurocloud.serve"):
        before, after = asyncio.run(main())
    assert abs(before - float(article_model(0).predict([[2.0]])[0, 0])) < 1e-6
    assert abs(after - float(article_model(5).predict([[2.0]])[0, 0])) < 1e-6
    assert "reloaded model seed version 1" in caplog.text


def test_readme_states_that_rule_and_the_tour_saves_elsewhere():
    from pathlib import Path

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert 'nc.save(model, "models/seed")' not in readme  # make run serves models/seed
    assert "replaced (`nc.save` over it), a single model directory included, is reloaded" in readme
