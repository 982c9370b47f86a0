"""nn/registry.py: name lookups that resolve aliases and list the valid names."""

from __future__ import annotations

import pytest

import neurocloud as nc
from neurocloud.nn.registry import Registry


def test_lookup_is_case_and_space_insensitive_and_resolves_aliases():
    r: Registry[int] = Registry("colour")
    r.register("red", 1)
    r.register("blue", 2)
    r.alias("crimson", "red")
    assert r.get(" RED ") == 1 and r.get("Crimson") == 1
    assert r.canonical("crimson") == "red" and r.names() == ["blue", "red"]


def test_unknown_names_and_non_strings_list_the_valid_names():
    r: Registry[int] = Registry("colour")
    r.register("red", 1)
    with pytest.raises(
        ValueError, match=r"Unknown colour 'green' for paint\. Expected one of: red"
    ):
        r.get("green", argument="paint")
    with pytest.raises(TypeError, match=r"Expected colour to be a name \(str\); received 3"):
        r.get(3)


def test_engine_registries_list_what_they_hold():
    assert "linear" not in nc.activations.available()  # an alias, not a name
    assert nc.activations.get("linear").name == "identity"
    assert set(nc.layers.available()) == {"Activation", "Dense", "Dropout", "Normalization"}
    assert "lbfgs" in nc.optim.available()
