"""examples/paper1_lambda_map.py runs and writes its PNG (matplotlib optional: skipped with
the reason printed when python3-matplotlib is absent)."""

import os
import subprocess
import sys

import pytest

from conftest import BUILD

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_paper1_lambda_map(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("SKIP: matplotlib is not installed (Debian: python3-matplotlib)")
    out = tmp_path / "map.png"
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"), MPLBACKEND="Agg",
               MPLCONFIGDIR=str(tmp_path))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "paper1_lambda_map.py"),
                        "--out", str(out), "--n", "32", "--rho-points", "5",
                        "--gamma-points", "6"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000
