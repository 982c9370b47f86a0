"""examples/explain_digits.py runs end to end: an accurate model, complete attributions, a PNG."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_explain_digits_example(tmp_path):
    out = tmp_path / "maps" / "digits.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "explain_digits.py"), str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.9
    errors = [float(e) for e in re.findall(r"completeness error (\S+)", result.stdout)]
    assert len(errors) == 6 and max(abs(e) for e in errors) < 1e-4  # float32 model
    predicted = re.findall(r"digit (\d): predicted (\d)", result.stdout)
    assert sum(a == b for a, b in predicted) >= 5
    assert out.read_bytes()[:4] == b"\x89PNG"
