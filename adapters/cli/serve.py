"""``serve``: the HTTP API, the projection runner and the scheduler in one process.

HTTP runs on uvicorn in the main thread; the projection runner follows the log in a thread of
its own; the scheduler (the SLA clock, the outbox, the report schedule, one leader at a time)
runs on APScheduler's threads. SIGINT or SIGTERM stops uvicorn gracefully (requests in flight
are answered; a command is answered only after its transaction committed, so nothing
acknowledged is lost), then the scheduler (a running job finishes first) and the runner.
An empty store gets the demo county first, as ``pingjing run`` does (``--no-demo``: it stays empty).
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from typing import Any

import uvicorn

from adapters.bootstrap import Runtime
from adapters.cli import county
from adapters.cli.common import EXIT_OK, UsageError
from adapters.cli.scheduling import DUTIES, leader_jobs, leadership_for
from adapters.http import create_app
from adapters.notify.outbox import Outbox
from adapters.qr.keys import load_keyring
from adapters.qr.lookup import an_active_officer
from adapters.qr.tokens import make_token
from projections import ALL
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.deadlines import DeadlineKeeper
from scheduler.service import SchedulerService

#: How long uvicorn waits for requests in flight when told to stop.
GRACE_SECONDS = 10
#: How long the projection thread may take to finish its page after the stop.
RUNNER_JOIN_SECONDS = 30


def register(sub: Any) -> None:
    """Add ``serve``."""
    serve = sub.add_parser("serve", help="the HTTP API with the projections and the scheduler; Ctrl-C stops")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    serve.add_argument("--no-scheduler", action="store_true", help="leave the scheduler to another process")
    serve.add_argument("--no-projections", action="store_true", help="leave following the log to another process")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo county into an empty store")
    serve.add_argument("--seed", type=int, default=2021, help="the demo's random seed")
    serve.set_defaults(handler=cmd_serve)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket; a clear usage error when the address cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock


def cmd_serve(rt: Runtime, args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    sock = listen(args.host, args.port)
    print(f"store: {rt.store.description}", flush=True)
    if not args.no_demo and not rt.app.recorder.max_notification_id():
        print("empty store: loading the demo county", flush=True)
        county.cmd_demo(rt, argparse.Namespace(seed=args.seed, until=None))
        # The demo's month of history is not news: nobody is notified of it, only of what follows.
        Outbox.from_runtime(rt).start_at_head()
    views = ViewStore.beside(rt.app)
    Runner(rt.app, views, ALL, policy=rt.policy).catch_up()
    scheduler = None
    if not args.no_scheduler:
        keeper = DeadlineKeeper(rt.app, views, Runner(rt.app, views, ALL, policy=rt.policy), rt.app.clock)
        scheduler = SchedulerService(keeper, leadership_for(rt), jobs=leader_jobs(rt))
    app = create_app(rt, views=views, scheduler=scheduler)
    stop = threading.Event()
    # uvicorn puts these back after its own handlers and re-raises the signal it caught: it lands here.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    follower = None
    if not args.no_projections:
        runner = Runner(rt.app, views, ALL, policy=rt.policy)
        follower = threading.Thread(target=runner.run_forever, args=(stop,), name="pingjing-projections", daemon=True)
    _announce(sock, args, scheduler is not None, _example_scan(rt))
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=GRACE_SECONDS)
    )
    if scheduler is not None:
        scheduler.start()
    if follower is not None:
        follower.start()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        if scheduler is not None:
            scheduler.stop()
        if follower is not None:
            follower.join(RUNNER_JOIN_SECONDS)
        sock.close()
    print("pingjing serve: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _example_scan(rt: Runtime) -> tuple[str, str] | None:
    """An officer's rating page path (as their QR code carries it) and who they are, to print; None without one."""
    target = an_active_officer(rt.app)
    if target is None:
        return None
    token = make_token(load_keyring(rt.settings), target.subject, target.key, target.version)
    return f"/s/{token}", f"{target.name} {target.key}, {target.unit_name}"


def _announce(sock: socket.socket, args: argparse.Namespace, scheduling: bool,
              scan: tuple[str, str] | None) -> None:
    host, port = sock.getsockname()[:2]
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    duties = ", ".join(["SLA clock", *DUTIES]) if scheduling else "off (--no-scheduler)"
    citizen = [f"  citizen page        {base}{scan[0]}  (a scan of {scan[1]}'s code)"] if scan else []
    lines = [
        f"pingjing serve on {base}",
        *citizen,
        f"  track a case        {base}/track/<case reference>  (with the last four digits of its phone)",
        f"  API docs (OpenAPI)  {base}/docs",
        f"  health              {base}/healthz",
        f"  metrics             {base}/metrics",
        f"  staff API           {base}/api/v1/  (e.g. {base}/api/v1/cases)",
        "  a token:            pingjing token create --role supervisor --principal YOUR-ID",
        f"  projections         {'following the log' if not args.no_projections else 'off (--no-projections)'}",
        f"  scheduler           {duties}",
        "Ctrl-C stops",
    ]
    print("\n".join(lines), flush=True)
