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
import subprocess
import sys
import threading
from typing import Any

import structlog
import uvicorn

from adapters.bootstrap import Runtime
from adapters.cli import county
from adapters.cli.common import EXIT_OK, UsageError, check_keys
from adapters.cli.scheduling import DUTIES, leader_jobs, leadership_for
from adapters.foreground import NO_FOREGROUND, Foreground
from adapters.heap import settle
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
#: At most this many HTTP worker processes.
MAX_WORKERS = 64
#: How often the parent of ``--workers N`` looks for a worker that died.
WATCH_SECONDS = 0.5

log = structlog.get_logger("pingjing.serve")


def register(sub: Any) -> None:
    """Add ``serve``."""
    serve = sub.add_parser("serve", help="the HTTP API with the projections and the scheduler; Ctrl-C stops")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    serve.add_argument("--no-scheduler", action="store_true", help="leave the scheduler to another process")
    serve.add_argument("--no-projections", action="store_true", help="leave following the log to another process")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo county into an empty store")
    serve.add_argument("--seed", type=int, default=2021, help="the demo's random seed")
    serve.add_argument("--workers", type=int, default=1,
                       help="HTTP processes sharing the port (default 1); this one then runs the projections "
                            "and the scheduler and watches over them")
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # a worker's inherited socket
    serve.set_defaults(handler=cmd_serve)


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening socket; a clear usage error when the address cannot be had.

    ``reuse_port``: one of a group of listeners on the same address (``SO_REUSEPORT``).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock


#: Whether the kernel spreads the connections of one address over a group of listeners: Linux's
#: ``SO_REUSEPORT`` (elsewhere the option exists with other meanings, or not at all).
SPREADS_CONNECTIONS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """The listening sockets of ``count`` HTTP processes on one address: one each where the kernel
    spreads connections over them (:data:`SPREADS_CONNECTIONS`), else one shared by all.

    One socket shared by several processes lets whichever accepts first take every connection
    waiting: a burst of a few long-lived connections (16 clients, or a proxy's pool) can all
    land on one process while another idles. A listener each, in one ``SO_REUSEPORT`` group,
    has the kernel hand every new connection to one of them by a hash of its addresses. This
    process keeps every socket open: a worker that dies leaves its queued connections to the
    worker started in its place on the same socket.
    """
    if count == 1 or not SPREADS_CONNECTIONS:
        return [listen(host, port)]
    first = listen(host, port, reuse_port=True)
    bound = first.getsockname()[1]  # port 0 asked for any free port: the others join this one
    socks = [first]
    try:
        socks.extend(listen(host, bound, reuse_port=True) for _ in range(count - 1))
    except UsageError:
        for sock in socks:
            sock.close()
        raise
    return socks


def cmd_serve(rt: Runtime, args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    _check(args)
    if args.listen_fd is not None:
        return _worker(rt, args)
    check_keys(rt)
    socks = listeners(args.host, args.port, args.workers)
    views = _prepared(rt, args)
    # One process serving HTTP too: the follower and the outbox step aside for its requests.
    foreground = Foreground() if args.workers == 1 else NO_FOREGROUND
    # One runner for the process: the follower, the deadline keeper and the requests take turns
    # with it, rather than each folding what another has just folded.
    runner = Runner(rt.app, views, ALL, policy=rt.policy)
    scheduler = None
    if not args.no_scheduler:
        keeper = DeadlineKeeper(rt.app, views, runner, rt.app.clock)
        scheduler = SchedulerService(keeper, leadership_for(rt), jobs=leader_jobs(rt, foreground=foreground))
    stop = threading.Event()
    # uvicorn puts these back after its own handlers and re-raises the signal it caught: it lands here.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    follower = None
    if not args.no_projections:
        follower = threading.Thread(target=runner.run_forever, args=(stop,), kwargs={"on_batch": foreground.step_aside},
                                    name="pingjing-projections", daemon=True)
    _announce(socks[0], args, scheduler is not None, _example_scan(rt))
    if scheduler is not None:
        scheduler.start()
    if follower is not None:
        follower.start()
    try:
        if args.workers == 1:
            _http(create_app(rt, views=views, scheduler=scheduler, foreground=foreground, runner=runner), socks[0])
        else:
            Workers(args, socks).run(stop)
    finally:
        stop.set()
        if scheduler is not None:
            scheduler.stop()
        if follower is not None:
            follower.join(RUNNER_JOIN_SECONDS)
        for sock in socks:
            sock.close()
    print("pingjing serve: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _check(args: argparse.Namespace) -> None:
    """Refuse a port or a number of workers that cannot be."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers {args.workers}: between 1 and {MAX_WORKERS}")


def _prepared(rt: Runtime, args: argparse.Namespace) -> ViewStore:
    """The store with the demo county when it was empty (unless ``--no-demo``), and its views caught up."""
    print(f"store: {rt.store.description}", flush=True)
    if not args.no_demo and not rt.app.recorder.max_notification_id():
        print("empty store: loading the demo county", flush=True)
        county.cmd_demo(rt, argparse.Namespace(seed=args.seed, until=None))
        # The demo's month of history is not news: nobody is notified of it, only of what follows.
        Outbox.from_runtime(rt).start_at_head()
    views = ViewStore.beside(rt.app)
    Runner(rt.app, views, ALL, policy=rt.policy).catch_up()
    return views


def _http(app: Any, sock: socket.socket) -> None:
    """Serve HTTP on ``sock`` until a signal; requests in flight are answered first."""
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=GRACE_SECONDS)
    )
    # Under a burst on serve --workers 2, a settled heap about halved the slowest requests'
    # time (README, Performance).
    settle()
    server.run(sockets=[sock])


def _worker(rt: Runtime, args: argparse.Namespace) -> int:
    """One HTTP process of ``--workers N`` on the socket its parent bound (the parent runs the rest)."""
    sock = socket.socket(fileno=args.listen_fd)
    try:
        _http(create_app(rt), sock)
    finally:
        sock.close()
    return EXIT_OK


class Workers:
    """``--workers N``: N HTTP processes on the listening sockets bound here, started again if one dies.

    The sockets are bound once, here, and handed down (:func:`listeners`: one each where the
    kernel spreads the connections over them, else one for all); each worker is ``pingjing
    serve`` again with its socket's descriptor, its own application, group committer and
    views reader, and no projections or scheduler of its own (this process runs them). A
    worker started in place of one that died takes its socket. A stop signal goes on to every
    worker, which answers what it has in flight before it exits.
    """

    def __init__(self, args: argparse.Namespace, socks: list[socket.socket]) -> None:
        self.args = args
        self.socks = socks
        self.processes: list[subprocess.Popen[bytes]] = []

    def socket_of(self, index: int) -> socket.socket:
        """The socket the ``index`` th worker accepts on."""
        return self.socks[index % len(self.socks)]

    def command(self, index: int = 0) -> list[str]:
        """How the ``index`` th worker is started: this command line, as a worker of its socket."""
        database = ["--database", self.args.database] if self.args.database else []
        fd = str(self.socket_of(index).fileno())
        return [sys.executable, "-m", "adapters.cli", *database, "serve", "--listen-fd", fd,
                "--no-demo", "--no-projections", "--no-scheduler"]

    def start_one(self, index: int = 0) -> subprocess.Popen[bytes]:
        """A new ``index`` th worker process."""
        fd = self.socket_of(index).fileno()
        return subprocess.Popen(self.command(index), pass_fds=(fd,))  # noqa: S603 - our own command line

    def run(self, stop: threading.Event) -> None:
        """Start the workers, restart any that dies, and stop them all when ``stop`` is set."""
        self.processes = [self.start_one(i) for i in range(self.args.workers)]
        try:
            while not stop.wait(WATCH_SECONDS):
                for i, process in enumerate(self.processes):
                    if process.poll() is not None:
                        log.warning("serve_worker_died", pid=process.pid, status=process.returncode)
                        self.processes[i] = self.start_one(i)
        finally:
            for process in self.processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in self.processes:
                try:
                    process.wait(GRACE_SECONDS + 5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


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
        f"  supervision console {base}/console/  (sign in with a token)",
        "  a token:            pingjing token create --role supervisor --principal YOUR-ID",
        f"  projections         {'following the log' if not args.no_projections else 'off (--no-projections)'}",
        f"  scheduler           {duties}",
        f"  HTTP processes      {args.workers}",
        "Ctrl-C stops",
    ]
    print("\n".join(lines), flush=True)
