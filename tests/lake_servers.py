"""Servers for the DuckLake tests, each on 127.0.0.1, a free port and a folder of its own:

- ``postgres_server``: a Postgres cluster made by Debian's own binaries (``/usr/lib/postgresql/
  <version>/bin``: initdb, pg_ctl, createdb), password authentication (scram-sha-256) on TCP,
  its socket in its folder, never the system's cluster or port 5432. initdb refuses to run as
  root, so as root the cluster belongs to the ``postgres`` user (Debian's package creates it),
  else ``nobody``, and lives under /tmp, not in pytest's root-only folder.
- ``s3_server``: moto's S3 in a thread (``moto.server.ThreadedMotoServer``); ``s3_bucket`` makes
  a new bucket per test.

Both are session-scoped (initdb costs about 1.3 s, moto's import about 1.4 s). Each fixture
skips with the reason when its server cannot start here: no Postgres binaries (``make test``
installs Debian's ``postgresql`` as root), no user to run them as, moto not installed, a server
that would not start (its log's last lines in the reason).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

POSTGRES_BINARIES = ("initdb", "pg_ctl", "createdb")
# Without fsync a test cluster is about 10x faster to create databases in; it is thrown away.
POSTGRES_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
"""
S3_KEY_ID = "nostr-test-key"
S3_REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path | None:
    """The newest Debian Postgres whose server binaries are all there, else pg_ctl's folder
    on PATH (another system's packages)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / name).is_file() for name in POSTGRES_BINARIES):
            return folder
    return None


def postgres_user() -> str | None:
    """Who runs the cluster: ourselves, or as root a user initdb accepts; None: nobody fits."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


@dataclass
class PostgresServer:
    """A running test cluster; ``catalog(db)`` is a DuckLake catalog string for a database."""

    bin_dir: Path
    folder: Path
    user: str  # the operating-system user the server runs as
    port: int = 0
    role: str = "lake"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8), repr=False)

    def _run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            args, capture_output=True, text=True, timeout=60, check=False, **as_user, **kwargs
        )

    def libpq(self, dbname: str, password: str | None = None) -> str:
        """A libpq connection string; ``password=""`` leaves the password out."""
        text = f"dbname={dbname} host=127.0.0.1 port={self.port} user={self.role}"
        shown = self.password if password is None else password
        return f"{text} password={shown}" if shown else text

    def catalog(self, dbname: str, password: str | None = None) -> str:
        return f"postgres:{self.libpq(dbname, password)}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"lake_{uuid.uuid4().hex[:12]}"
        done = self._run(
            str(self.bin_dir / "createdb"),
            *("-h", "127.0.0.1", "-p", str(self.port), "-U", self.role, name),
            env={**os.environ, "PGPASSWORD": self.password},
        )
        if done.returncode:
            raise RuntimeError(f"createdb failed: {done.stderr.strip()}")
        return name

    def start(self) -> str | None:
        """Create and start the cluster; None when it runs, else why it does not."""
        data, pwfile = self.folder / "data", self.folder / "password"
        pwfile.write_text(self.password + "\n")
        owner = pwd.getpwnam(self.user)
        for path in (self.folder, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        init = self._run(
            str(self.bin_dir / "initdb"),
            *("-D", str(data), "-U", self.role, "--pwfile", str(pwfile)),
            *("--auth", "scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"),
        )
        if init.returncode:
            return f"initdb failed: {init.stderr.strip()[-500:]}"
        conf = data / "postgresql.conf"
        base = conf.read_text()
        log = self.folder / "server.log"
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = free_port()
            conf.write_text(base + POSTGRES_CONF.format(port=self.port, sockets=self.folder))
            started = self._run(
                str(self.bin_dir / "pg_ctl"),
                *("-D", str(data), "-l", str(log), "-w", "-t", "30", "start"),
            )
            if started.returncode == 0:
                return None
        tail = log.read_text(errors="replace").strip()[-500:] if log.exists() else ""
        return f"pg_ctl start failed: {started.stderr.strip()[-300:]} {tail}"

    def stop(self) -> None:
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no Postgres server binaries (initdb, pg_ctl, createdb in /usr/lib/postgresql/*/bin "
            "or on PATH): `apt-get install postgresql` (make test does, as root)"
        )
    user = postgres_user()
    if user is None:
        pytest.skip(
            "running as root with neither a postgres nor a nobody user: initdb refuses root"
        )
    folder = Path(tempfile.mkdtemp(prefix="nostr-postgres-"))
    server = PostgresServer(bin_dir, folder, user)
    try:
        why = server.start()
        if why is not None:
            pytest.skip(f"the test Postgres ({bin_dir}) did not start: {why}")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class S3Server:
    """moto's S3 on 127.0.0.1; any key is accepted, these are the ones the tests sign with."""

    endpoint: str  # http://127.0.0.1:<port>
    key_id: str = S3_KEY_ID
    secret: str = field(default_factory=lambda: "s3-" + secrets.token_hex(12), repr=False)
    region: str = S3_REGION

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            region_name=self.region,
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        pytest.skip(f"moto's server is not installed ({error}): make setup installs the test extra")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except OSError as error:
        pytest.skip(f"moto's S3 server did not start on 127.0.0.1: {error}")
    host, port = server.get_host_and_port()
    try:
        yield S3Server(endpoint=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new empty bucket on the session's S3 server."""
    name = f"lake-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
