"""Two folders naming one version (``1`` and ``01``): the plain one is served, whatever order
the file system lists them in, and the other is ignored and logged once."""

from __future__ import annotations

import logging
import os

from serve_helpers import article_model

import neurocloud as nc
from neurocloud.serve import model_folders


def test_folders_1_and_01_serve_folder_1_and_log_the_other(tmp_path, caplog, monkeypatch):
    nc.save(article_model(0), tmp_path / "seed" / "1")
    nc.save(article_model(5), tmp_path / "seed" / "01")
    real = os.scandir

    class Reversed:  # a listing order a file system may give: "1" first, then "01"
        def __init__(self, path):
            self.inner = real(path)
            self.entries = sorted(self.inner, key=lambda e: e.name, reverse=True)

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            self.inner.close()

        def __iter__(self):
            return iter(self.entries)

    monkeypatch.setattr(model_folders.os, "scandir", Reversed)
    with caplog.at_level(logging.WARNING, logger="neurocloud.serve"):
        found = model_folders.discover(tmp_path / "seed")
        model_folders.discover(tmp_path / "seed")
    assert found == {"seed": {"1": (tmp_path / "seed" / "1").resolve()}}
    assert caplog.text.count("version 1 is already 1") == 1
