"""schemathesis against the published OpenAPI schema of the running service: no input may cause a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RedisServer
from tests.stack import running_stack

pytestmark = [pytest.mark.timeout(900), pytest.mark.service]


def test_no_server_errors_for_generated_requests(tmp_path: Path, redis_server: RedisServer) -> None:
    with running_stack(tmp_path / "stack", redis=redis_server, workers=0) as stack:
        exe = Path(sys.executable).with_name("schemathesis")
        out = subprocess.run(
            [str(exe), "run", f"{stack.url}/openapi.json", "--checks", "not_a_server_error",
             "--header", f"X-API-Key: {stack.admin_key}", "--max-examples", "25", "--seed", "7",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--workers", "1",
             "--suppress-health-check", "all", "--exclude-path-regex", "^/v1/render/"],
            capture_output=True, text=True, timeout=840, check=False)
        api_log = stack.log("api")
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report + "\n--- api log ---\n" + api_log[-3000:]
    assert "Traceback" not in api_log, api_log[-3000:]
    assert "passed" in out.stdout.lower() or "no issues" in out.stdout.lower(), report
