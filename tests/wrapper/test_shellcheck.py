"""Stage one must be shellcheck-clean."""
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / "wrapper" / "bash" / "wrapper.sh"]


def test_shellcheck_clean(missing):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "shellcheck findings:\n" + result.stdout + result.stderr
