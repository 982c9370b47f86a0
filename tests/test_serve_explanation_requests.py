"""serve/explanation_requests.py: ``explain_batch`` gives the library's numbers, bounds the
work, names the limit or lists the valid choices, and is safe beside concurrent predicts."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from explain_networks import kinked_network, random_network

from neurocloud import explain
from neurocloud.serve import explanation_requests as serving
from neurocloud.serve.explanation_requests import LimitExceeded, explain_batch


@pytest.fixture
def model():
    return random_network(3, "relu")


@pytest.fixture
def X(model):
    return np.random.default_rng(0).normal(size=(4, model.input_dim))


def test_each_method_serves_the_librarys_numbers(model, X):
    background = np.random.default_rng(1).normal(size=(8, model.input_dim))
    cases = [
        ({"method": "saliency", "absolute": True}, explain.saliency(model, X, absolute=True)),
        (
            {"method": "ig", "steps": 32, "baseline": 0.5, "target": 0},
            explain.integrated_gradients(model, X, baseline=0.5, steps=32, target=0),
        ),
        ({}, explain.integrated_gradients(model, X)),
        (
            {"method": "smoothgrad", "samples": 6, "noise": 0.2, "seed": 4},
            explain.smoothgrad(model, X, samples=6, noise=0.2, seed=4),
        ),
        (
            {"method": "smoothgrad", "over": "ig", "samples": 3, "steps": 16},
            explain.smoothgrad(model, X, over="ig", samples=3, steps=16),
        ),
        (
            {"method": "expected", "background": background.tolist(), "samples": 40},
            explain.expected_gradients(model, X, background, samples=40),
        ),
    ]
    for parameters, reference in cases:
        out = explain_batch(model, X, parameters)
        assert np.array_equal(out["attributions"], reference.attributions), parameters
        assert np.array_equal(out["prediction"], reference.prediction)
        assert np.array_equal(out["target"], reference.target)
        if reference.base_value is None:
            assert "base_value" not in out and "completeness_error" not in out
        else:
            assert np.array_equal(out["base_value"], reference.base_value)
            assert np.array_equal(out["completeness_error"], reference.completeness_error)
    assert "standard_error" in out


@pytest.mark.parametrize(
    ("parameters", "rows", "named"),
    [
        ({"method": "ig", "steps": serving.MAX_STEPS + 1}, 2, f"steps={serving.MAX_STEPS + 1}"),
        ({"method": "smoothgrad", "samples": 5000}, 2, "samples=5000"),
        ({"method": "saliency"}, serving.MAX_ROWS + 1, f"rows={serving.MAX_ROWS + 1}"),
        (
            {"method": "expected", "background": np.zeros((serving.MAX_BACKGROUND_ROWS + 1, 1))},
            2,
            f"background has {serving.MAX_BACKGROUND_ROWS + 1} rows",
        ),
        (
            {"method": "smoothgrad", "over": "ig", "samples": 1000, "steps": 1000},
            2,
            "MAX_EVALUATED_VALUES",
        ),
    ],
)
def test_over_limit_requests_raise_limit_exceeded_naming_the_limit(parameters, rows, named):
    model = random_network(0, "tanh")
    X = np.zeros((rows, model.input_dim))
    if "background" in parameters:
        parameters = {
            **parameters,
            "background": np.zeros((len(parameters["background"]), model.input_dim)),
        }
    with pytest.raises(LimitExceeded, match=named) as info:
        explain_batch(model, X, parameters)
    assert "limit" in str(info.value) and isinstance(info.value, ValueError)


def test_bad_requests_are_value_errors_that_list_the_valid_choices(model, X):
    with pytest.raises(ValueError, match=r"Unknown explanation method 'magic'.*saliency"):
        explain_batch(model, X, {"method": "magic"})
    with pytest.raises(ValueError, match=r"'shap' is not served.*ig\).*saliency"):
        explain_batch(model, X, {"method": "shap"})
    with pytest.raises(ValueError, match=r"Unknown explanation method \[1\]"):
        explain_batch(model, X, {"method": [1]})
    with pytest.raises(ValueError, match=r"Unknown parameter.*'stepz'.*Valid parameters: .*steps"):
        explain_batch(model, X, {"method": "ig", "stepz": 3})
    with pytest.raises(ValueError, match=r"'samples'.*for method 'saliency'"):
        explain_batch(model, X, {"method": "saliency", "samples": 3})
    with pytest.raises(ValueError, match=r"needs parameters\.background"):
        explain_batch(model, X, {"method": "expected_gradients"})
    with pytest.raises(ValueError, match="steps=0"):
        explain_batch(model, X, {"steps": 0})
    for huge in (int("9" * 400), "9" * 400):  # too large for a float: a 400, not an overflow
        with pytest.raises((ValueError, LimitExceeded), match="steps"):
            explain_batch(model, X, {"method": "ig", "steps": huge})
    with pytest.raises(ValueError, match="logits to be true or false"):
        explain_batch(model, X, {"logits": "maybe"})
    with pytest.raises(ValueError, match="target in"):
        explain_batch(model, X, {"target": 99})
    with pytest.raises(ValueError, match="must hold numbers"):
        explain_batch(model, X, {"method": "expected", "background": [["a"] * model.input_dim]})
    # request-level protocol flags are not explanation settings
    out = explain_batch(model, X, {"binary_data_output": True, "steps": 8.0})
    assert out["attributions"].shape == X.shape


def test_settings_sent_as_text_are_read_as_numbers_and_flags(model, X):
    # a SageMaker /explain?method=ig&steps=16 query string gives text values
    text = {"method": "ig", "steps": "16", "target": "0", "logits": "false", "baseline": "0.5"}
    out = explain_batch(model, X, text)
    reference = explain.integrated_gradients(model, X, baseline=0.5, steps=16, target=0)
    assert np.array_equal(out["attributions"], reference.attributions)
    with pytest.raises(ValueError, match="steps='many'"):
        explain_batch(model, X, {"steps": "many"})
    single = explain_batch(model, X, {"method": "expected", "background": X, "samples": 1})
    assert "standard_error" not in single


def test_concurrent_explains_and_predicts_do_not_disturb_each_other(model, X):
    expected = explain_batch(model, X, {"method": "ig"})["attributions"]
    predicted = model.predict(X)
    failures: list[str] = []

    def explainer() -> None:
        for _ in range(10):
            try:
                got = explain_batch(model, X, {"method": "ig"})["attributions"]
            except Exception as exc:  # a race shows up as a shape error in backward
                failures.append(f"explain raised {exc!r}")
                return
            if not np.array_equal(got, expected):
                failures.append("explain")

    def predictor(rows: int) -> None:
        batch = np.random.default_rng(rows).normal(size=(rows, model.input_dim))
        for _ in range(200):
            model.predict(batch)
        if not np.array_equal(model.predict(X), predicted):
            failures.append("predict")

    threads = [threading.Thread(target=explainer) for _ in range(3)]
    threads += [threading.Thread(target=predictor, args=(rows,)) for rows in (1, 7, 33)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_model_trained_after_its_first_explanation_is_explained_with_its_new_weights():
    import neurocloud as nc

    m = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0, dtype="float64")
    x = np.array([[4.5]])
    before = explain_batch(m, x, {"method": "saliency"})["attributions"]
    assert np.allclose(before, m.layers[0].params["kernel"][:, 0])
    X = np.linspace(-1.0, 1.0, 32)[:, None]
    m.fit(X, 5.0 * X, loss="mse", optimizer=nc.optim.LBFGS(), epochs=5)
    kernel = m.layers[0].params["kernel"][:, 0]
    assert abs(kernel[0] - before[0, 0]) > 1.0  # the fit moved the weight
    after = explain_batch(m, x, {"method": "saliency"})["attributions"]
    assert np.allclose(after, kernel)
    # and with adapted normalisation buffers too
    norm = nc.Sequential([nc.layers.Normalization(), nc.layers.Dense(1)], input_dim=1, seed=0)
    explain_batch(norm, x, {"method": "saliency"})
    norm.layers[0].adapt(10.0 * X)
    reference = explain.saliency(norm, x).attributions
    assert np.array_equal(explain_batch(norm, x, {"method": "saliency"})["attributions"], reference)


def test_kink_search_work_counts_against_max_work(monkeypatch):
    """The request's size passes the bound, but its kinks make the work three times that:
    refused with the limit named, before the gradients' passes."""
    model = kinked_network()
    X = np.random.default_rng(1).normal(size=(96, 6)) * 2.0
    estimate = (96 * serving.PATH_PROBES + 2 * 96) * (model.count_params() + 6)
    monkeypatch.setattr(serving, "MAX_WORK", int(1.5 * estimate))
    with pytest.raises(LimitExceeded, match=r"MAX_WORK=\d+; the kinks") as info:
        explain_batch(model, X, {"method": "ig", "steps": 8})
    assert "work units" in str(info.value)
    monkeypatch.setattr(serving, "MAX_WORK", 4 * estimate)
    assert explain_batch(model, X, {"method": "ig", "steps": 8})["attributions"].shape == X.shape


def test_a_kink_heavy_request_stops_inside_the_kink_search_at_its_deadline(monkeypatch):
    from neurocloud.explain import core, kinks

    monkeypatch.setattr(core, "CHUNK_ROWS", 1024)
    model = kinked_network()
    X = np.random.default_rng(2).normal(size=(512, 6)) * 2.0  # within every limit
    with core.deadline() as search:
        kinks.path_breakpoints(model, np.zeros_like(X), X)
    stop = threading.Event()
    chunks = 0
    spend = core.spend

    def deadline_passes_at_the_fourth_chunk(units: int) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 4:  # the first is the outputs' pass; the rest are the kink search
            stop.set()
        spend(units)

    monkeypatch.setattr(core, "spend", deadline_passes_at_the_fourth_chunk)
    parameters = {"method": "smoothgrad", "over": "ig", "samples": 2, "steps": 64}
    with core.deadline(stop=stop) as bounds, pytest.raises(core.DeadlineExceeded):
        explain_batch(model, X, parameters)
    assert chunks == 4 and bounds.work < search.work
