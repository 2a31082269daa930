"""Runs the stage-one bats suite (tests/bats): real bash against loopback HTTP servers."""
import shutil
import subprocess
from pathlib import Path

BATS_DIR = Path(__file__).resolve().parents[1] / "bats"


def test_bats_suite(missing):
    bats = shutil.which("bats")
    if bats is None:
        missing("bats is not installed (apt-get install bats)")
    result = subprocess.run([bats, "--tap", str(BATS_DIR)], capture_output=True, text=True, timeout=300)
    tap = result.stdout + result.stderr
    failed = [line for line in tap.splitlines() if line.startswith("not ok")]
    assert result.returncode == 0 and not failed, "bats failures:\n" + tap
    assert "\nok " in "\n" + tap
