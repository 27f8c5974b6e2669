"""``serve()``, the server behind ``previz simulate``: ready callback; Ctrl-C and SIGTERM end it quietly."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from runner.simulator import SimConfig, build_app

pytestmark = pytest.mark.anyio

SERVER = """
import sys
from runner.simulator import SimConfig, serve

def ready(url):
    sys.stdout.write(url + "\\n")
    sys.stdout.flush()

serve(SimConfig.from_profile("clean", time_scale=0.01), port=0, on_ready=ready)
sys.stdout.write("stopped\\n")
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_serve_reports_its_url_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        base_url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session, session.get(f"{base_url}/_sim/stats") as response:
            assert response.status == 200
            assert "providers" in await response.json()
        proc.send_signal(stop_signal)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert out.decode().strip() == "stopped"
    assert b"Traceback" not in err


def test_build_app_serves_every_route() -> None:
    app = build_app(SimConfig.from_profile("clean"))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    expected = {
        ("POST", "/v2/video/generations"),
        ("GET", "/v2/video/generations"),
        ("POST", "/v1"),
        ("POST", "/v1/image_to_video"),
        ("GET", "/v1/tasks/{task_id}"),
        ("DELETE", "/v1/tasks/{task_id}"),
        ("GET", "/v1/organization"),
        ("GET", "/files/{file_id}.mp4"),
        ("GET", "/_sim/stats"),
    }
    assert expected <= routes
