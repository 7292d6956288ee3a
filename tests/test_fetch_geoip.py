"""Protects `make geoip` (scripts/fetch_geoip.py): the project's virtualenv holds no pip (uv
installs none), so the pip to download with is given; a missing one is a clear error and
leaves no database behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_geoip.py"


def test_a_missing_pip_is_a_clear_error_and_writes_nothing(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}  # no MAXMIND_LICENSE_KEY: only DB-IP is fetched
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--dest", str(tmp_path), "--pip", str(tmp_path / "nopip")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode != 0
    assert f"no pip at {tmp_path / 'nopip'}: pass --pip PATH" in run.stdout + run.stderr
    assert list(tmp_path.glob("*.mmdb")) == []
