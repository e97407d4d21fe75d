"""The API only writes to the store: it cannot reach the watcher or broadcaster."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FORBIDDEN = {"websockets", "watcher", "broadcaster"}
API = Path(__file__).resolve().parents[2] / "api"


def test_api_source_imports_no_notification_module():
    for path in API.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_running_the_api_loads_no_notification_module():
    code = (
        "import sys\n"
        "from api import create_app\n"
        "client = create_app().test_client()\n"
        "client.post('/api/desks', json={'name': 'a', 'width': 1, 'height': 1})\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(API.parent),
        "DESKS_EMBEDDED_PATH": ":memory:",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"
