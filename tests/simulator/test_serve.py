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


async def test_previz_simulate_prints_pasteable_exports_with_the_keys_it_accepts() -> None:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "runner", "simulate", "--port", "0", "--time-scale", "0.01"),
        *("--key", "RUNWAYML_API_SECRET=my-test-key", "--key", "runware=rw-test-key"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or not lines[-1].lstrip().startswith("stats:"):
            lines.append((await asyncio.wait_for(proc.stdout.readline(), 30)).decode())
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in lines
            if line.strip().startswith("export ")
        )
        assert exports["RUNWAYML_API_SECRET"] == "my-test-key"
        assert exports["RUNWARE_API_KEY"] == "rw-test-key"
        assert exports["AIMLAPI_API_KEY"] == "sim-aimlapi-key"
        base = exports["RUNWAYML_BASE_URL"]
        assert base == exports["RUNWARE_BASE_URL"] == exports["AIMLAPI_BASE_URL"]
        version = {"X-Runway-Version": "2024-11-06"}
        async with aiohttp.ClientSession() as session:
            for key, expected in (("my-test-key", 200), ("sim-runway-key", 401)):
                headers = {"Authorization": f"Bearer {key}", **version}
                async with session.get(f"{base}/v1/organization", headers=headers) as response:
                    assert response.status == expected
            auth = [{"taskType": "authentication", "apiKey": exports["RUNWARE_API_KEY"]}]
            async with session.post(f"{base}/v1", json=auth) as response:
                assert response.status == 200
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


@pytest.mark.parametrize("pair", ["RUNWAYML_API_SECRET", "NOPE=x", "runway="])
async def test_previz_simulate_refuses_a_bad_key_option(pair: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "runner", "simulate", "--port", "0", "--key", pair),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"--key" in err and out == b""
