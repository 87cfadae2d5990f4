import subprocess
import sys

import apiward


def test_version_is_exposed() -> None:
    assert apiward.__version__.count(".") == 2


def test_cli_version_runs_in_a_subprocess() -> None:
    r = subprocess.run([sys.executable, "-m", "apiward", "version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert apiward.__version__ in r.stdout
