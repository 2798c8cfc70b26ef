"""Rating submissions over real HTTP on loopback, against ``pingjing serve`` on a SQLite file.

The server is the product's own single-machine process (``pingjing serve``: uvicorn, the
projection thread and the scheduler together), started in a subprocess on a store with a
county of officers whose QR codes are issued. Concurrent clients post rating forms to
``/s/{token}`` as phones would (a distinct device cookie each, a fifth of them dissatisfied
with a complaint and a phone, which opens and pushes a case); the baseline is the same app's
trivial ``/livez`` under the same concurrency, measured in the same run.

The clients are a few lines of HTTP/1.1 over asyncio streams with keep-alive, not a full
client library: on a 2-core machine the load generator shares the CPU with the server, and
the figure should be the server's, not the client's.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from adapters.bootstrap import bootstrap
from adapters.qr.keys import load_keyring
from adapters.qr.tokens import make_token
from adapters.settings import Settings
from bench import ingest
from domain import commands as c
from domain.application import Context
from domain.values import Actor, QrSubject, Role

ADMIN = Context(Actor("bench-admin", Role.ADMIN))
_ANNOUNCED = re.compile(r"pingjing serve on (http://[^\s]+)")
_STARTUP_SECONDS = 120


@dataclass(frozen=True)
class Load:
    """One measured run: requests answered per second and their latencies."""

    requests: int
    failures: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds


@dataclass(frozen=True)
class HttpFigures:
    """Submissions and the trivial endpoint, and how many submissions reached the log."""

    submissions: Load
    trivial: Load
    concurrency: int
    stored_ratings: int


def _env(directory: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PINGJING_DATABASE": str(directory / "bench.sqlite3"),
        "PINGJING_QR_KEY_FILE": str(directory / "qr-keys.json"),
        "PINGJING_DEVICE_KEY_FILE": str(directory / "device-key"),
        "PINGJING_REPORTS_DIR": str(directory / "reports"),
        "PINGJING_CITIZEN_POSTS_PER_MINUTE": "0",  # every client is 127.0.0.1 here
        "PINGJING_LOG_LEVEL": "warning",
        "PINGJING_LOG_FORMAT": "json",
    }


def _settings(env: dict[str, str]) -> Settings:
    """The settings the server process will read from ``env``."""
    prefix = "PINGJING_"
    return Settings.model_validate({k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)})


def prepare(env: dict[str, str]) -> list[str]:
    """Register the county and issue every officer's code; return the paths to post to."""
    settings = _settings(env)
    rt = bootstrap(settings, observers=[], configure_logging=False)
    try:
        badges = ingest.register_county(rt.app)
        rt.app.execute_batch([(c.IssueQr(subject="officer", key=badge), ADMIN) for badge in badges])
        keyring = load_keyring(settings)
        return [f"/s/{make_token(keyring, QrSubject.OFFICER, badge, 1)}" for badge in badges]
    finally:
        rt.close()


def _form(rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        fields = {"verdict": "dissatisfied", "service_score": "2", "attitude_score": "1", "efficiency_score": "2",
                  "complaint": "窗口等候时间过长，无人解释", "phone": f"138{rng.randrange(10**8):08d}"}
    else:
        fields = {"verdict": "satisfied", "service_score": "5", "attitude_score": "5", "efficiency_score": "4"}
    return urllib.parse.urlencode(fields).encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _load(host: str, port: int, requests: list[bytes], concurrency: int, expect: int) -> Load:
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)

    async def client() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in queue:
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                failures += status != expect
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return Load(len(ordered), failures, seconds, statistics.median(ordered) * 1000,
                ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000)


def _post(host: str, path: str, body: bytes, device: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Cookie: pj_device={device}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def _start(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[str], str, int]:
    server = subprocess.Popen(  # noqa: S603 - our own interpreter running our own command
        [sys.executable, "-m", "adapters.cli", "serve", "--no-demo", "--port", "0", "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert server.stdout is not None
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        found = _ANNOUNCED.search(line)
        if found:
            url = urllib.parse.urlsplit(found.group(1))
            return server, url.hostname or "127.0.0.1", url.port or 80
    server.kill()
    raise RuntimeError("pingjing serve did not announce its address")


def measure(requests: int = 5_000, concurrency: int = 32, seed: int = 7, workers: int = 1) -> HttpFigures:
    """Post ``requests`` ratings with ``concurrency`` clients, then as many ``/livez`` requests.

    ``workers`` > 1: ``serve --workers N`` (N HTTP processes on the port; the parent process
    follows the log and runs the scheduler).
    """
    with tempfile.TemporaryDirectory(prefix="pingjing-bench-http-") as name:
        env = _env(Path(name))
        paths = prepare(env)
        server, host, port = _start(env, workers)
        try:
            rng = random.Random(seed)
            warm = [_post(host, rng.choice(paths), _form(rng), f"warm{n:020d}") for n in range(200)]
            asyncio.run(_load(host, port, warm, concurrency, 200))
            posts = [_post(host, rng.choice(paths), _form(rng), f"dev{n:021d}") for n in range(requests)]
            submissions = asyncio.run(_load(host, port, posts, concurrency, 200))
            trivial = asyncio.run(_load(host, port, [_get(host, "/livez")] * requests, concurrency, 200))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        stored = _stored_ratings(env)
    return HttpFigures(submissions, trivial, concurrency, stored - len(warm))


def _stored_ratings(env: dict[str, str]) -> int:
    settings = _settings(env)
    rt = bootstrap(settings, observers=[], configure_logging=False)
    try:
        return sum(1 for _, event in rt.app.iter_events(batch=5000) if type(event).__qualname__ == "Rating.Submitted")
    finally:
        rt.close()
