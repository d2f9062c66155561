"""``import bradley`` and a plain fit must not load heavy optional modules.

Each check runs in a fresh interpreter, since this test process has already
imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FIT = (
    "import json, sys, numpy as np, bradley\n"
    "before = set(sys.modules)\n"
    "rng = np.random.default_rng(0)\n"
    "left = rng.integers(0, 30, 3000); right = (left + rng.integers(1, 30, 3000)) % 30\n"
    "data = bradley.Comparisons.from_arrays(left, right, (rng.random(3000) < 0.5).astype(float))\n"
    "bradley.BradleyTerry().fit(data)  # dense Newton\n"
    "left = rng.integers(0, 300, 30000); right = (left + rng.integers(1, 300, 30000)) % 300\n"
    "bradley.BradleyTerry().fit(bradley.Comparisons.from_arrays(left, right, (rng.random(30000) < 0.5) * 1.0))  # CG\n"
    "print(json.dumps({'at_import': sorted(before), 'after_fit': sorted(sys.modules)}))\n"
)


@pytest.fixture(scope="module")
def loaded() -> dict[str, set[str]]:
    out = subprocess.run([sys.executable, "-c", FIT], capture_output=True, text=True, check=True).stdout
    return {k: set(v) for k, v in json.loads(out.splitlines()[-1]).items()}


def imported(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("name", ["scipy.stats", "matplotlib", "torch", "tqdm", "tabulate", "trueskill"])
def test_heavy_modules_are_not_loaded_by_import_and_fit(loaded, name):
    assert not imported(loaded["at_import"], name), f"import bradley loads {name}"
    assert not imported(loaded["after_fit"], name), f"BradleyTerry().fit loads {name}"


@pytest.mark.parametrize("name", ["bradley.evaluate", "bradley.matchups", "bradley.datasets"])
def test_optional_submodules_load_on_first_use(loaded, name):
    assert name not in loaded["at_import"]
    code = f"import sys, bradley; bradley.{name.split('.')[1]}; print({name!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_scipy_optimize_is_not_loaded_by_import_or_a_newton_fit(loaded):
    # bt.py imports it only inside lbfgs, pairwise.py only for its L-BFGS fallback
    assert not imported(loaded["at_import"], "scipy.optimize")
    assert not imported(loaded["after_fit"], "scipy.optimize")
