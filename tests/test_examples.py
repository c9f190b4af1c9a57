"""End-to-end check of examples/demo.py: Flask async views sharing one AsyncClient.

Runs the whole demo (embedded upstream, Flask app on werkzeug's threaded server in
a fresh subprocess per library, stdlib load generator) and requires loopfree to
serve every request. httpx is run too for the comparison; its failures are expected.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


@pytest.mark.slow
def test_flask_shared_client_demo_has_no_loopfree_failures() -> None:
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--requests", "200", "--concurrency", "8"],
        capture_output=True,
        text=True,
        timeout=110,  # the demo bounds itself well below this; pytest's timeout is 120 s
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"^loopfree: 0 failures / 200\b", output, re.MULTILINE), output
