"""A bad ``NEUROCLOUD_HEADER_TIMEOUT_S`` is refused once, at start, naming the variable;
it used to be parsed per connection, so every connection failed with a ValueError."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from serve_helpers import article_model

import neurocloud as nc
from neurocloud.cli import main
from neurocloud.serve import server
from neurocloud.serve.protocol import HEADER_TIMEOUT_S, header_timeout_s


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_header_timeout_names_the_variable(raw):
    with pytest.raises(ValueError, match=rf"NEUROCLOUD_HEADER_TIMEOUT_S: expected .*'{raw}'"):
        header_timeout_s({"NEUROCLOUD_HEADER_TIMEOUT_S": raw})


def test_the_header_timeout_defaults_and_reads_the_variable():
    assert header_timeout_s({}) == header_timeout_s({"NEUROCLOUD_HEADER_TIMEOUT_S": " "})
    assert header_timeout_s({}) == HEADER_TIMEOUT_S
    assert header_timeout_s({"NEUROCLOUD_HEADER_TIMEOUT_S": "2.5"}) == 2.5


def test_serve_refuses_a_bad_header_timeout_before_it_starts(tmp_path, monkeypatch):
    path = nc.save(article_model(), tmp_path / "seed")
    started = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(
        main,
        ["serve", str(path), "--port", "0"],
        env={"NEUROCLOUD_HEADER_TIMEOUT_S": "ten"},
    )
    assert result.exit_code == 1 and not started
    assert "NEUROCLOUD_HEADER_TIMEOUT_S: expected a number of seconds > 0" in result.output
