"""Every setting of nostr-analytics, once: variable, type, default, meaning and check.

The code location, the command line and (through the Dagster side) dbt read their settings
here and nowhere else, so a value means the same thing everywhere: before issue 7,
``NOSTR_ALLOW_PRIVATE_ADDRESSES=on`` opened the address guard for the assets and not for the
CLI. A bad value is refused before any work with one line naming the variable, the value and
what it accepts; every bad value is reported at once (``SettingsError``), so fixing an
environment takes one round, not one per variable.

A variable set to the empty string counts as unset: ``.env`` files and compose templates
write ``NAME=`` for "not configured". Relative paths are relative to the project root, not to
the working directory, so the code server, the daemon's run workers and dbt agree on them.

No dagster import: the CLI and the library use this module too.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


class SettingsError(Exception):
    """Bad settings: ``problems`` holds one line per bad value.

    Not a ValueError on purpose: pydantic wraps ValueErrors raised in resource validators into
    a multi-line report; this one passes through with its single line intact.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def problem(name: str, value: object, expected: str) -> str:
    """The one line that refuses a value: ``NOSTR_KINDS='abc': expected ...``."""
    return f"{name}={value!r}: {expected}"


# Parsers take the variable's text and return the typed value, or raise ValueError whose
# message completes the problem line ("expected ...").


def parse_truth(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected 1, true, yes, on (allow) or 0, false, no, off, empty (refuse)")


def parse_kinds(text: str) -> tuple[int, ...] | None:
    """Sorted distinct kinds, or None (every kind) for an empty value."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    expected = "expected comma-separated integers 0..65535 (empty: every kind)"
    if not all(p.isascii() and p.isdigit() and int(p) <= 65535 for p in parts):
        raise ValueError(expected)
    return tuple(sorted({int(p) for p in parts})) or None


def parse_positive_int(text: str) -> int:
    # 0 would make every semaphore of the crawl wait forever: a hung step, not an error.
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError("expected an integer >= 1")
    return value


def parse_seconds(text: str) -> float:
    # nan and inf parse as floats; a timeout of either never fires, and 0 or less fires at once.
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError("expected a finite number of seconds > 0")
    return value


def _normalise_all(labelled: Iterable[tuple[str, str]]) -> tuple[tuple[str, ...], list[str]]:
    """(normalised URLs in first-seen order without repeats, "label (reason)" per bad one)."""
    urls: dict[str, None] = {}
    bad: list[str] = []
    for label, raw in labelled:
        try:
            urls.setdefault(normalize_relay_url(raw))
        except InvalidRelayUrl as error:
            bad.append(f"{label} ({error.reason})")
    return tuple(urls), bad


def parse_relay_urls(text: str) -> tuple[str, ...]:
    """Normalised relay URLs, first spelling wins; every bad one is named, none dropped."""
    parts = (part.strip() for part in text.split(","))
    urls, bad = _normalise_all((repr(raw), raw) for raw in parts if raw)
    if bad:
        raise ValueError(
            f"not relay URLs: {', '.join(bad)}; expected comma-separated ws:// or wss:// URLs"
        )
    return urls


def parse_monitor_key(text: str) -> bool:
    """True for a usable key. Settings keep only that: the key itself is read from the
    environment by the monitor resource, when something is to be signed."""
    from nostr_assets.lib.protocol.keys import InvalidSecretKey, parse_secret_key

    try:
        parse_secret_key(text)
    except InvalidSecretKey as error:
        raise ValueError(str(error)) from None
    return True


def parse_path(text: str) -> Path:
    return Path(text.strip()).expanduser()


def parse_partition_start(text: str) -> str:
    expected = "expected a past UTC hour as YYYY-MM-DD-HH:00"
    try:
        start = datetime.strptime(text.strip(), PARTITION_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(expected) from None
    # A start in the future leaves no partition for the schedule's hour; a start off the hour
    # would shift every partition boundary away from the hours the crawler fetches.
    if start.minute or start > datetime.now(UTC):
        raise ValueError(expected)
    return start.strftime(PARTITION_FORMAT)


WAREHOUSES = ("duckdb", "ducklake")


def parse_warehouse(text: str) -> str:
    word = text.strip().lower()
    if word not in WAREHOUSES:
        raise ValueError("expected duckdb (one DuckDB file) or ducklake (a DuckLake catalog)")
    return word


def parse_ducklake_catalog(text: str) -> str:
    """``sqlite:PATH`` or ``postgres:<libpq connection string>``, as DuckLake spells them;
    a relative SQLite path is resolved against the project root by ``load_settings``."""
    kind, _, target = text.strip().partition(":")
    if kind not in ("sqlite", "postgres") or not target.strip():
        raise ValueError(
            "expected sqlite:PATH or postgres:<libpq connection string>, "
            "e.g. postgres:dbname=lake host=db.example"
        )
    if kind == "sqlite":
        return f"sqlite:{Path(target.strip()).expanduser()}"
    return f"postgres:{target.strip()}"


def parse_ducklake_data_path(text: str) -> str:
    """A local folder, or ``s3://bucket/prefix``; a relative folder is resolved against the
    project root by ``load_settings``."""
    value = text.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        return str(Path(value).expanduser())
    if scheme == "s3" and rest.split("/", 1)[0]:
        return value if value.endswith("/") else f"{value}/"
    raise ValueError("expected a folder or s3://bucket/prefix")


# A password inside a libpq connection string, as keyword=value (quoted or not) or inside a
# URI's user info (postgresql://user:password@host/db). An unquoted value ends at a blank or at
# the double quote DuckDB's error messages put around the whole string.
_KEYWORD_PASSWORD = re.compile(
    r"""(?P<key>password\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|[^\s"]*)""", re.IGNORECASE
)
_URI_PASSWORD = re.compile(
    r"(?P<user>\b[a-z][a-z0-9+.-]*://[^/@\s:]*):(?P<value>[^@\s]*)@", re.IGNORECASE
)
HIDDEN = "<hidden>"


def hide_password(text: str, *secrets: str) -> str:
    """``text`` with every password of a connection string in it replaced by ``<hidden>``, and
    every literal ``secrets`` too (a password whose quoting the patterns might miss)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    text = _KEYWORD_PASSWORD.sub(lambda m: m["key"] + HIDDEN, text)
    return _URI_PASSWORD.sub(lambda m: f"{m['user']}:{HIDDEN}@", text)


def catalog_passwords(catalog: str) -> list[str]:
    """The passwords written in a ``postgres:`` catalog string, unquoted as libpq reads them."""
    passwords = [m["value"] for m in _URI_PASSWORD.finditer(catalog)]
    for match in _KEYWORD_PASSWORD.finditer(catalog):
        value = match["value"]
        if value.startswith("'"):
            passwords.append(value)  # as written, quotes included, and as libpq reads it
            value = re.sub(r"\\(.)", r"\1", value.strip("'"))
        elif "://" in catalog:
            passwords.append(value.split("&", 1)[0])  # a URI's query: ?password=x&sslmode=...
        passwords.append(value)
    # Longest first: a password that contains another is hidden whole.
    return sorted({p for p in passwords if p and p != HIDDEN}, key=len, reverse=True)


def parse_s3_endpoint(text: str) -> str:
    """``http://host:port`` or ``https://host[:port]``: an S3-compatible server (MinIO, Ceph,
    Cloudflare R2 ...); the scheme says whether DuckDB speaks TLS to it."""
    scheme, sep, rest = text.strip().rstrip("/").partition("://")
    if (
        scheme.lower() not in ("http", "https")
        or not sep
        or not re.fullmatch(r"[\w.:\-\[\]]+", rest)
    ):
        raise ValueError("expected http://host:port or https://host[:port], no path")
    return f"{scheme.lower()}://{rest}"


def parse_s3_region(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", value):
        raise ValueError("expected letters, digits, - and _ only, e.g. eu-central-1 or auto")
    return value


def parse_s3_key_id(text: str) -> str:
    # AWS key ids are 20 letters and digits; S3-compatible servers allow more, never a blank.
    value = text.strip()
    if any(char.isspace() for char in value):
        raise ValueError("expected an access key id without blanks")
    return value


def parse_s3_secret_key(text: str) -> bool:
    """True: set (an empty value is unset, never parsed). Settings keep only that; the
    resource binds the variable itself, so the UI shows its name, never its value."""
    return True


@dataclass(frozen=True)
class Setting:
    """One row of the configuration table."""

    name: str  # the environment variable
    field: str  # its attribute on Settings
    type: str
    default: str  # the text used when the variable is unset or empty
    meaning: str
    parse: Callable[[str], Any]
    is_path: bool = False  # relative values are resolved against the project root
    shown_default: str | None = None  # how the README shows the default, when not `default`
    secret: bool = False  # never repeated, not even in the line that refuses it
    hide: Callable[[str], str] | None = None  # how a refused value is shown, when not as given


# The first partition of a new install: recent, because Dagster lists every partition, filled
# or not, and the 34,000 empty hours since 2023 made the asset pages unusable. A fixed hour
# rather than "now minus N days", so partition keys do not move at every restart. Set
# NOSTR_PARTITIONS_START earlier to backfill further back; hours never filled cost nothing else.
DEFAULT_PARTITIONS_START = "2026-11-01-00:00"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "NOSTR_PROJECT_ROOT",
        "project_root",
        "folder",
        "",
        "the folder holding data/ and dbt_project/; relative paths below start here",
        parse_path,
        shown_default="the checkout holding this package, else the working directory",
    ),
    Setting(
        "NOSTR_DUCKDB_PATH",
        "duckdb_path",
        "file path",
        "data/nostr.duckdb",
        "the DuckDB warehouse; Dagster and dbt both use it",
        parse_path,
        is_path=True,
    ),
    Setting(
        "NOSTR_WAREHOUSE",
        "warehouse",
        "duckdb or ducklake",
        "duckdb",
        "where the raw tables and marts live: one DuckDB file (NOSTR_DUCKDB_PATH), or a DuckLake "
        "(NOSTR_DUCKLAKE_CATALOG, NOSTR_DUCKLAKE_DATA_PATH) attached as `lake`",
        parse_warehouse,
    ),
    Setting(
        "NOSTR_DUCKLAKE_CATALOG",
        "ducklake_catalog",
        "sqlite:PATH or postgres:<libpq string>",
        "sqlite:data/lake/catalog.sqlite",
        "the DuckLake catalog (with NOSTR_WAREHOUSE=ducklake): SQLite for processes on one "
        "machine, Postgres for many writers and remote readers",
        parse_ducklake_catalog,
        hide=hide_password,
    ),
    Setting(
        "NOSTR_DUCKLAKE_DATA_PATH",
        "ducklake_data_path",
        "folder or s3://bucket/prefix",
        "data/lake/files",
        "where DuckLake writes its Parquet files (with NOSTR_WAREHOUSE=ducklake)",
        parse_ducklake_data_path,
    ),
    Setting(
        "NOSTR_DUCKLAKE_S3_ENDPOINT",
        "ducklake_s3_endpoint",
        "http(s)://host[:port]",
        "",
        "the S3-compatible server of an s3:// data path (MinIO, Ceph, R2 ...), its buckets "
        "addressed by path; http:// speaks no TLS",
        parse_s3_endpoint,
        shown_default="AWS S3",
    ),
    Setting(
        "NOSTR_DUCKLAKE_S3_REGION",
        "ducklake_s3_region",
        "region name",
        "us-east-1",
        "the region requests to an s3:// data path are signed for",
        parse_s3_region,
    ),
    Setting(
        "NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID",
        "ducklake_s3_access_key_id",
        "access key id",
        "",
        "the key id for an s3:// data path (with NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY)",
        parse_s3_key_id,
        shown_default="none (anonymous requests)",
    ),
    Setting(
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY",
        "ducklake_s3_secret_set",
        "secret access key",
        "",
        "the secret of NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID; never shown or logged",
        parse_s3_secret_key,
        shown_default="none",
        secret=True,
    ),
    Setting(
        "NOSTR_DUCKLAKE_WRITERS",
        "ducklake_writers",
        "integer >= 1",
        "2",
        "with NOSTR_WAREHOUSE=ducklake, the processes that crawl and land the hours of one "
        "raw/nostr_events run at once, each a share of the range",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_DUCKDB_MEMORY_MB",
        "duckdb_memory_mb",
        "integer >= 1",
        # DuckDB's default is 80% of the machine's memory, and it keeps what it writes cached
        # up to that: a week's backfill grew by 9 MB an hour landed. Landing merges a window
        # slice by slice of 10,000 events, which runs within 256 MB.
        "512",
        "megabytes of memory DuckDB may use in the Dagster process (its cache included)",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_RELAYS",
        "relays",
        "comma-separated ws(s):// URLs",
        "",
        "relays to crawl besides the relays file; a URL removed from here is no longer fetched",
        parse_relay_urls,
        shown_default="none",
    ),
    Setting(
        "NOSTR_RELAYS_FILE",
        "relays_file",
        "file path",
        "data/relays.txt",
        "the bootstrap relay list, one URL per line, # comments; removed URLs are no longer "
        "fetched",
        parse_path,
        is_path=True,
    ),
    Setting(
        "NOSTR_KINDS",
        "kinds",
        "comma-separated integers 0..65535",
        "",
        "event kinds to fetch, e.g. 1,7,30023",
        parse_kinds,
        shown_default="every kind",
    ),
    Setting(
        "NOSTR_CONCURRENCY",
        "concurrency",
        "integer >= 1",
        # Most relay connections wait on a round trip or a timeout, not on the CPU; a socket
        # costs little, and each relay's window is bounded by NOSTR_MAX_WINDOW_MB.
        "256",
        "relay connections open at once",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_CONNECT_TIMEOUT",
        "connect_timeout",
        "seconds > 0",
        "10",
        "DNS, TCP, TLS and websocket handshake, per relay",
        parse_seconds,
    ),
    Setting(
        "NOSTR_IDLE_TIMEOUT",
        "idle_timeout",
        "seconds > 0",
        "15",
        "silence tolerated from a relay before giving up on it",
        parse_seconds,
    ),
    Setting(
        "NOSTR_TOTAL_TIMEOUT",
        "total_timeout",
        "seconds > 0",
        "300",
        "everything one relay may take for one window",
        parse_seconds,
    ),
    Setting(
        "NOSTR_MAX_WINDOW_MB",
        "max_window_mb",
        "integer >= 1",
        "64",
        "megabytes one relay may send for one window; past it the window is cut and flagged",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_MIN_RELAY_CAP",
        "min_relay_cap",
        "integer >= 1",
        # Relay software caps a REQ at 100 to 5000 events; a page shorter than this ends a
        # window's walk, saving a round trip per relay (and REQs on rate-limited relays).
        "10",
        "the fewest events a relay is assumed to return per REQ: a shorter page is complete",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_NIP11_MAX_KB",
        "nip11_max_kb",
        "integer >= 1",
        # Real documents are 1 to 20 kB; the cap holds for the body as sent and as decoded,
        # so a compressed answer cannot inflate past it in memory.
        "256",
        "kilobytes of a NIP-11 document, as sent and as decoded; past it the fetch is refused",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_CATALOG_URLS_PER_EVENT",
        "catalog_urls_per_event",
        "integer >= 1",
        # Real relay lists name 2 to 30 relays; one event with 20,000 hints must not add
        # 20,000 relays to the hourly crawl.
        "100",
        "relay URLs one event may add to the catalog (its first ones); the rest are counted",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_CATALOG_NEW_URLS_PER_RUN",
        "catalog_new_urls_per_run",
        "integer >= 1",
        # The real network names about 2,500 relays in all; a run meeting more new ones than
        # this takes the best attested (most deliberate source, most authors) and the rest
        # wait for the next run.
        "1000",
        "new relay URLs the catalog takes per run; the others wait for a later run",
        parse_positive_int,
    ),
    Setting(
        "NOSTR_ALLOW_PRIVATE_ADDRESSES",
        "allow_private_addresses",
        "1/true/yes/on or 0/false/no/off",
        "false",
        "contact relays on private, loopback and link-local addresses (tests, own relays)",
        parse_truth,
    ),
    Setting(
        "NOSTR_GEOIP_CITY_DB",
        "geoip_city_db",
        "file path",
        "",
        "the city .mmdb database",
        parse_path,
        is_path=True,
        shown_default="the best found in data/geoip/",
    ),
    Setting(
        "NOSTR_GEOIP_ASN_DB",
        "geoip_asn_db",
        "file path",
        "",
        "the ASN .mmdb database (optional)",
        parse_path,
        is_path=True,
        shown_default="the one found in data/geoip/, if any",
    ),
    Setting(
        "NOSTR_DASHBOARD_PATH",
        "dashboard_path",
        "file path",
        "data/reports/network.html",
        "the network dashboard: one HTML file that opens in a browser without any network",
        parse_path,
        is_path=True,
    ),
    Setting(
        "NOSTR_MONITOR_SECRET_KEY",
        "monitor_secret_key_set",
        "64 hex characters or nsec1...",
        "",
        "the key our NIP-66 monitor signs its reports with; unset: nothing is published",
        parse_monitor_key,
        shown_default="none (publishing off)",
        secret=True,
    ),
    Setting(
        "NOSTR_MONITOR_PUBLISH_RELAYS",
        "monitor_publish_relays",
        "comma-separated ws(s):// URLs",
        "",
        "where our NIP-66 monitor publishes its hourly kind-30166 reports",
        parse_relay_urls,
        shown_default="none (publishing off)",
    ),
    Setting(
        "NOSTR_PARTITIONS_START",
        "partitions_start",
        "UTC hour, YYYY-MM-DD-HH:00",
        DEFAULT_PARTITIONS_START,
        "the first hourly partition: how far back a backfill can reach",
        parse_partition_start,
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The parsed configuration; see SETTINGS for what each field means."""

    project_root: Path
    duckdb_path: Path
    warehouse: str  # duckdb | ducklake
    # sqlite:<absolute path> | postgres:<libpq string>, which may hold a password: no repr
    ducklake_catalog: str = field(repr=False)
    ducklake_data_path: str  # an absolute folder | s3://bucket/prefix/
    ducklake_s3_endpoint: str | None  # None: AWS S3
    ducklake_s3_region: str
    ducklake_s3_access_key_id: str | None  # None: anonymous requests
    ducklake_s3_secret_set: bool | None  # the secret is never kept here; None: unset
    ducklake_writers: int
    relays: tuple[str, ...]
    relays_file: Path | None  # None: unset and the default file is absent
    kinds: tuple[int, ...] | None  # None: every kind
    concurrency: int
    connect_timeout: float
    idle_timeout: float
    total_timeout: float
    max_window_mb: int
    min_relay_cap: int
    duckdb_memory_mb: int
    nip11_max_kb: int
    catalog_urls_per_event: int
    catalog_new_urls_per_run: int
    allow_private_addresses: bool
    geoip_city_db: Path | None  # None: the best database found in data/geoip/
    geoip_asn_db: Path | None
    dashboard_path: Path
    monitor_secret_key_set: bool | None  # the key is never kept here; None: unset
    monitor_publish_relays: tuple[str, ...] | None
    partitions_start: str


def _is_project(folder: Path) -> bool:
    return (folder / "dbt_project" / "dbt_project.yml").is_file()


def find_project_root(environ: Mapping[str, str] | None = None) -> Path:
    """The project folder: NOSTR_PROJECT_ROOT, else the checkout this package lives in, else
    the working directory.

    The checkout comes before the working directory because the dbt project is found beside
    the package too: a `dagster dev` started from another folder must not pair this code with
    a new, empty warehouse there. A package installed from a wheel lives in site-packages,
    which holds no dbt_project/: then the folder it is run from is the project.
    """
    environ = os.environ if environ is None else environ
    override = environ.get("NOSTR_PROJECT_ROOT", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if _is_project(checkout):
        return checkout
    return Path.cwd().resolve()


def read_relays_file(path: Path, name: str = "NOSTR_RELAYS_FILE") -> tuple[str, ...]:
    """The normalised URLs of a relay list (one per line, ``#`` comments); raises
    SettingsError naming each line that is not a relay URL, or an unreadable file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError([problem(name, str(path), f"cannot read: {error.strerror}")]) from None
    except UnicodeDecodeError:
        raise SettingsError([problem(name, str(path), "not UTF-8 text")]) from None
    lines = ((n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1))
    urls, bad = _normalise_all((f"line {n} {raw!r}", raw) for n, raw in lines if raw)
    if bad:
        expected = "expected ws:// or wss:// URLs, one per line"
        raise SettingsError([problem(name, str(path), f"{'; '.join(bad)}: {expected}")])
    return urls


def _s3_key_pair_problems(values: Mapping[str, Any], wanted: set[str]) -> list[str]:
    """The S3 key id and its secret go together: one without the other signs nothing."""
    names = ("NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID", "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY")
    if not wanted.issuperset(names):
        return []
    key_id, secret_set = (
        values.get("ducklake_s3_access_key_id"),
        values.get("ducklake_s3_secret_set"),
    )
    if key_id and not secret_set:
        return [problem(names[1], "", f"expected the secret of {names[0]}={key_id!r}")]
    if secret_set and not key_id:
        return [problem(names[0], "", f"expected the key id of {names[1]} (both or neither)")]
    return []


def load_settings(
    environ: Mapping[str, str] | None = None, only: Iterable[str] | None = None
) -> Settings:
    """Parse and check the settings from ``environ`` (default: the process environment).

    ``only`` limits the checks to the named variables (the CLI needs five); the others take
    their defaults. Raises SettingsError with one line per bad value.
    """
    environ = os.environ if environ is None else environ
    wanted = set(BY_NAME) if only is None else set(only)
    unknown = wanted - set(BY_NAME)
    if unknown:
        raise KeyError(f"no such setting: {sorted(unknown)}")
    problems: list[str] = []
    root = find_project_root(environ if "NOSTR_PROJECT_ROOT" in wanted else {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given = environ.get(setting.name, "") if setting.name in wanted else ""
        text = given if given.strip() else setting.default
        try:
            value = setting.parse(text) if text.strip() else None
        except ValueError as error:
            shown = HIDDEN if setting.secret else setting.hide(given) if setting.hide else given
            problems.append(problem(setting.name, shown, str(error)))
            continue
        if setting.is_path and value is not None:
            value = (root / value).resolve()
        values[setting.field] = value

    values["project_root"] = root
    catalog = values.get("ducklake_catalog")
    if catalog and catalog.startswith("sqlite:"):
        values["ducklake_catalog"] = f"sqlite:{(root / catalog.removeprefix('sqlite:')).resolve()}"
    data_path = values.get("ducklake_data_path")
    if data_path and "://" not in data_path:
        # DuckLake joins file names to the data path as text: it must end with a separator.
        values["ducklake_data_path"] = f"{(root / data_path).resolve()}/"
    problems.extend(_s3_key_pair_problems(values, wanted))
    if not root.is_dir():
        problems.append(problem("NOSTR_PROJECT_ROOT", str(root), "expected an existing folder"))
    values["relays"] = values.get("relays") or ()
    relays_file = values.get("relays_file")
    explicit_file = "NOSTR_RELAYS_FILE" in wanted and environ.get("NOSTR_RELAYS_FILE", "").strip()
    if relays_file is not None and not explicit_file and not relays_file.exists():
        # A new install from a wheel has no data/relays.txt: then NOSTR_RELAYS alone.
        values["relays_file"] = None
    elif relays_file is not None and "NOSTR_RELAYS_FILE" in wanted:
        try:
            read_relays_file(relays_file)
        except SettingsError as error:
            problems.extend(error.problems)
    if problems:
        raise SettingsError(problems)
    return Settings(**values)
