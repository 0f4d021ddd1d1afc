"""Start throwaway PostgreSQL and Redis servers on free loopback ports.

Used by the test command and the benchmarks. Binaries come from the machine;
when one is missing and we run as root, Debian's package is installed with
apt-get, otherwise the error says what to install. Servers live in a temporary
directory and are stopped (and the directory removed) on exit.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise ServiceError(
            f"{' and '.join(packages)} not found. Install with: sudo apt-get install -y "
            f"{' '.join(packages)}   (then run this command again)"
        )
    print(f"installing {' '.join(packages)} with apt-get ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def postgres_bin_dir() -> Path:
    def found() -> list[str]:
        return sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(p.split("/")[4]))

    if not found():
        _apt_install("postgresql")
    candidates = found()
    if not candidates:
        raise ServiceError("PostgreSQL's initdb is still missing after installing postgresql")
    return Path(candidates[-1]).parent


def _command(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first when it is missing."""
    path = shutil.which(command)
    if path is None:
        _apt_install(package)
        path = shutil.which(command)
    if path is None:
        raise ServiceError(f"{command} is still missing after installing {package}")
    return path


def redis_server_bin() -> str:
    return _command("redis-server", "redis-server")


def chromium_bin() -> str:
    """Debian's Chromium, for the browser tests (never a browser downloaded by a test tool)."""
    return _command("chromium", "chromium")


def npm_bin() -> str:
    """npm (with Node.js), to install the tracker's build tools from its package-lock.json."""
    path = shutil.which("npm")
    if path is None or shutil.which("node") is None:
        _apt_install("nodejs", "npm")
        path = shutil.which("npm")
    if path is None:
        raise ServiceError("npm is still missing after installing nodejs and npm")
    return path


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a server, killing it if it does not exit in time."""
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise ServiceError(f"{name} did not listen on port {port} within {timeout:.0f} s")


def _run_as_postgres() -> tuple[list[str], int | None, int | None]:
    """PostgreSQL refuses to run as root: use the 'postgres' account then."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        account = pwd.getpwnam("postgres")
    return [], account.pw_uid, account.pw_gid


def _postgres_owner(workdir: Path) -> Callable[[], None]:
    """Give ``workdir`` to the account PostgreSQL runs as; returns the pre-exec that runs as it."""
    _, uid, gid = _run_as_postgres()
    if uid is not None:
        os.chown(workdir, uid, gid)

    def demote() -> None:
        if uid is not None:
            os.setgid(gid)
            os.setuid(uid)

    return demote


def _postgres_initdb(workdir: Path) -> tuple[Path, Callable[[], None]]:
    """A new data directory under ``workdir``, and the pre-exec that runs as its owner."""
    bindir = postgres_bin_dir()
    demote = _postgres_owner(workdir)
    data = workdir / "pg"
    data.mkdir(parents=True)
    os.chown(data, workdir.stat().st_uid, workdir.stat().st_gid)  # the account demote runs as
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, stdout=subprocess.DEVNULL,
                   preexec_fn=demote)
    return data, demote


def _postgres_argv(data: Path, workdir: Path, port: int, durable: bool) -> list[str]:
    options = ["-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(workdir),
               "-c", "max_connections=200", "-c", "shared_buffers=256MB"]
    if not durable:
        options += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off"]
    return [str(postgres_bin_dir() / "postgres"), "-D", str(data), *options]


@contextlib.contextmanager
def postgres(workdir: Path, *, durable: bool = False) -> Iterator[str]:
    """A PostgreSQL server; yields its URL. ``durable=False`` turns fsync off (tests)."""
    data, demote = _postgres_initdb(workdir)
    port = free_port()
    log = open(workdir / "postgres.log", "wb")  # noqa: SIM115  closed below
    proc = subprocess.Popen(_postgres_argv(data, workdir, port, durable),
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=demote)
    try:
        _wait_for_port(port, proc, "postgres")
        url = f"postgres://postgres@127.0.0.1:{port}/recsite"
        _create_database(port)
        yield url
    finally:
        stop(proc)
        log.close()


def _create_database(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 20
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute("CREATE DATABASE recsite")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _redis_argv(workdir: Path, port: int) -> list[str]:
    return [redis_server_bin(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)]


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    """A Redis server without persistence; yields its URL."""
    port = free_port()
    log = open(workdir / "redis.log", "wb")  # noqa: SIM115  closed below
    proc = subprocess.Popen(_redis_argv(workdir, port), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def running(*, durable: bool = False) -> Iterator[dict[str, str]]:
    """PostgreSQL and Redis together; yields the environment that points at them."""
    workdir = Path(tempfile.mkdtemp(prefix="recsite-services-"))
    os.chmod(workdir, 0o755)
    try:
        with postgres(workdir, durable=durable) as database_url, redis(workdir) as redis_url:
            yield {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- servers stopped, killed and started again (python -m devtools.faults) ---


class RestartableServer:
    """A server on a fixed loopback port and data directory, to stop, kill and start again."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, workdir: Path, preexec: Callable[[], None] | None = None) -> None:
        self.workdir, self.preexec = workdir, preexec
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with open(self.workdir / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv_for(self.port), stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        _wait_for_port(self.port, self.proc, self.name)

    def argv_for(self, port: int) -> list[str]:
        raise NotImplementedError

    def stop(self, timeout: float = 30) -> None:
        """A clean shutdown (the server's own fast stop); killed if it takes too long."""
        if self.running:
            self.proc.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when the machine loses the process."""
        if self.running:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()


class PostgresServer(RestartableServer):
    """PostgreSQL; ``stop`` is its fast shutdown (clients disconnected, a checkpoint).

    ``template``: the data directory of a cleanly stopped server to start from (a copy
    of it), instead of a new one.
    """

    name = "postgres"
    stop_signal = signal.SIGINT

    def __init__(self, workdir: Path, *, durable: bool = True,
                 template: Path | None = None) -> None:
        if template is None:
            self.data, demote = _postgres_initdb(workdir)
        else:
            demote = _postgres_owner(workdir)
            self.data = workdir / "pg"
            subprocess.run(["cp", "-a", str(template), str(self.data)], check=True)
        self.durable = durable
        super().__init__(workdir, demote)

    def argv_for(self, port: int) -> list[str]:
        return _postgres_argv(self.data, self.workdir, port, self.durable)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/recsite"


class RedisServer(RestartableServer):
    """Redis without persistence: a restart loses every queued message and cached value."""

    name = "redis"

    def argv_for(self, port: int) -> list[str]:
        return _redis_argv(self.workdir, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def restartable(*, durable: bool = True, template: Path | None = None
                ) -> Iterator[tuple[PostgresServer, RedisServer]]:
    """PostgreSQL (with a ``recsite`` database, or a copy of ``template``'s) and Redis that
    the caller may stop and start."""
    workdir = Path(tempfile.mkdtemp(prefix="recsite-faults-"))
    os.chmod(workdir, 0o755)
    servers: list[RestartableServer] = []
    try:
        pg = PostgresServer(workdir, durable=durable, template=template)
        servers.append(pg)
        pg.start()
        if template is None:
            _create_database(pg.port)
        redis_server = RedisServer(workdir)
        servers.append(redis_server)
        redis_server.start()
        yield pg, redis_server
    finally:
        for server in reversed(servers):
            server.stop(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
