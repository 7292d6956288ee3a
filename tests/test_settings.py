"""Protects nostr_assets/settings.py, the one place settings are read: every bad value is
refused with one line naming the variable, the value and what it accepts; every problem is
reported at once; one vocabulary of truth words; relative paths start at the project root;
and relay URLs that do not normalise are named, never dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nostr_assets import settings as settings_module
from nostr_assets.settings import (
    DEFAULT_PARTITIONS_START,
    SETTINGS,
    SettingsError,
    find_project_root,
    load_settings,
    parse_truth,
    read_relays_file,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder of its own, so defaults never depend on the checkout's data/."""
    (tmp_path / "dbt_project").mkdir()
    (tmp_path / "dbt_project" / "dbt_project.yml").write_text("name: x\n")
    (tmp_path / "data").mkdir()
    return tmp_path


def refusal(environ: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    return caught.value.problems


def test_defaults_on_a_new_install(project):
    settings = load_settings({"NOSTR_PROJECT_ROOT": str(project)})
    assert settings.project_root == project.resolve()
    assert settings.duckdb_path == project.resolve() / "data" / "nostr.duckdb"
    assert settings.relays == ()
    assert settings.relays_file is None  # data/relays.txt absent: tolerated when not asked for
    assert settings.kinds is None
    assert settings.concurrency == 256
    assert (settings.connect_timeout, settings.idle_timeout, settings.total_timeout) == (
        10.0,
        15.0,
        300.0,
    )
    assert settings.allow_private_addresses is False
    assert settings.geoip_city_db is None and settings.geoip_asn_db is None
    assert settings.partitions_start == DEFAULT_PARTITIONS_START
    assert settings.warehouse == "duckdb"


def test_ducklake_paths_start_at_the_project_root(project):
    settings = load_settings(
        {
            "NOSTR_PROJECT_ROOT": str(project),
            "NOSTR_WAREHOUSE": " DuckLake ",
            "NOSTR_DUCKLAKE_CATALOG": "sqlite:lake/cat.sqlite",
            "NOSTR_DUCKLAKE_DATA_PATH": "lake/files",
        }
    )
    assert settings.warehouse == "ducklake"
    assert settings.ducklake_catalog == f"sqlite:{project.resolve() / 'lake' / 'cat.sqlite'}"
    assert settings.ducklake_data_path == f"{project.resolve() / 'lake' / 'files'}/"


def test_ducklake_postgres_catalog_and_s3_data_path_are_kept_as_given(project):
    settings = load_settings(
        {
            "NOSTR_PROJECT_ROOT": str(project),
            "NOSTR_DUCKLAKE_CATALOG": "postgres:dbname=lake host=db.example",
            "NOSTR_DUCKLAKE_DATA_PATH": "s3://bucket/nostr",
        }
    )
    assert settings.ducklake_catalog == "postgres:dbname=lake host=db.example"
    assert settings.ducklake_data_path == "s3://bucket/nostr/"


def test_every_default_in_the_table_parses():
    for setting in SETTINGS:
        if setting.default:
            setting.parse(setting.default)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("NOSTR_KINDS", "abc", "expected comma-separated integers 0..65535"),
        ("NOSTR_KINDS", "1,70000", "expected comma-separated integers 0..65535"),
        ("NOSTR_KINDS", "-1", "expected comma-separated integers 0..65535"),
        ("NOSTR_CONCURRENCY", "0", "expected an integer >= 1"),
        ("NOSTR_CONCURRENCY", "-3", "expected an integer >= 1"),
        ("NOSTR_CONCURRENCY", "2.5", "expected an integer >= 1"),
        ("NOSTR_CONNECT_TIMEOUT", "nan", "expected a finite number of seconds > 0"),
        ("NOSTR_IDLE_TIMEOUT", "inf", "expected a finite number of seconds > 0"),
        ("NOSTR_TOTAL_TIMEOUT", "-1", "expected a finite number of seconds > 0"),
        ("NOSTR_TOTAL_TIMEOUT", "0", "expected a finite number of seconds > 0"),
        ("NOSTR_TOTAL_TIMEOUT", "ten", "expected a finite number of seconds > 0"),
        ("NOSTR_ALLOW_PRIVATE_ADDRESSES", "maybe", "expected 1, true, yes, on"),
        ("NOSTR_ALLOW_PRIVATE_ADDRESSES", "t", "expected 1, true, yes, on"),
        ("NOSTR_RELAYS", "ws//host", "'ws//host' (bad_scheme)"),
        ("NOSTR_RELAYS", "htp://host", "'htp://host' (bad_scheme)"),
        ("NOSTR_WAREHOUSE", "lake", "expected duckdb (one DuckDB file) or ducklake"),
        ("NOSTR_DUCKLAKE_CATALOG", "catalog.sqlite", "expected sqlite:PATH or postgres:<libpq"),
        ("NOSTR_DUCKLAKE_CATALOG", "mysql:db=x", "expected sqlite:PATH or postgres:<libpq"),
        ("NOSTR_DUCKLAKE_CATALOG", "sqlite: ", "expected sqlite:PATH or postgres:<libpq"),
        ("NOSTR_DUCKLAKE_DATA_PATH", "gs://bucket/x", "expected a folder or s3://bucket/prefix"),
        ("NOSTR_DUCKLAKE_DATA_PATH", "s3:///prefix", "expected a folder or s3://bucket/prefix"),
        ("NOSTR_PARTITIONS_START", "2026-11-01", "expected a past UTC hour as YYYY-MM-DD-HH:00"),
        ("NOSTR_PARTITIONS_START", "2026-11-01-00:30", "expected a past UTC hour"),
        ("NOSTR_PARTITIONS_START", "2999-01-01-00:00", "expected a past UTC hour"),
    ],
)
def test_a_bad_value_is_one_line_naming_variable_value_and_what_it_accepts(
    project, name, value, expected
):
    problems = refusal({"NOSTR_PROJECT_ROOT": str(project), name: value})
    assert len(problems) == 1
    line = problems[0]
    assert "\n" not in line
    assert line.startswith(f"{name}={value!r}: ")
    assert expected in line


def test_every_problem_is_reported_at_once(project):
    bad = {
        "NOSTR_KINDS": "abc",
        "NOSTR_CONCURRENCY": "0",
        "NOSTR_CONNECT_TIMEOUT": "nan",
        "NOSTR_IDLE_TIMEOUT": "inf",
        "NOSTR_TOTAL_TIMEOUT": "-1",
        "NOSTR_ALLOW_PRIVATE_ADDRESSES": "maybe",
        "NOSTR_RELAYS": "wss://fine.example,ws//host,htp://host",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings({"NOSTR_PROJECT_ROOT": str(project), **bad})
    problems = caught.value.problems
    assert sorted(line.split("=", 1)[0] for line in problems) == sorted(bad)
    assert str(caught.value) == "\n".join(problems)
    relays_line = next(line for line in problems if line.startswith("NOSTR_RELAYS="))
    # Both malformed URLs are named; the good one is not blamed.
    assert "'ws//host'" in relays_line and "'htp://host'" in relays_line
    assert "'wss://fine.example' (" not in relays_line


def test_settings_error_is_not_a_value_error():
    # pydantic turns ValueErrors raised in resource validators into a multi-line report.
    assert not issubclass(SettingsError, ValueError)


@pytest.mark.parametrize("word", ["1", "true", "TRUE", " Yes ", "on", "On"])
def test_true_words(word):
    assert parse_truth(word) is True


@pytest.mark.parametrize("word", ["0", "false", "No", "off", "", "  "])
def test_false_words(word):
    assert parse_truth(word) is False


def test_on_allows_private_addresses(project):
    # Before issue 7, "on" was true for the assets and false for the CLI.
    environ = {"NOSTR_PROJECT_ROOT": str(project), "NOSTR_ALLOW_PRIVATE_ADDRESSES": "on"}
    assert load_settings(environ).allow_private_addresses is True


def test_values_are_parsed_and_normalised(project, tmp_path):
    settings = load_settings(
        {
            "NOSTR_PROJECT_ROOT": str(project),
            "NOSTR_KINDS": " 7, 1,,1 ",
            "NOSTR_CONCURRENCY": "200",
            "NOSTR_TOTAL_TIMEOUT": "2.5",
            "NOSTR_RELAYS": "WSS://Relay.Example.com:443/, wss://relay.example.com,ws://b.example",
            "NOSTR_DUCKDB_PATH": "elsewhere/x.duckdb",
            "NOSTR_GEOIP_CITY_DB": str(tmp_path / "city.mmdb"),
        }
    )
    assert settings.kinds == (1, 7)
    assert settings.concurrency == 200
    assert settings.total_timeout == 2.5
    assert settings.relays == ("wss://relay.example.com", "ws://b.example")
    # Relative paths start at the project root, whatever the working directory.
    assert settings.duckdb_path == project.resolve() / "elsewhere" / "x.duckdb"
    assert settings.geoip_city_db == (tmp_path / "city.mmdb").resolve()


def test_an_empty_variable_counts_as_unset(project):
    empty = {setting.name: "" for setting in SETTINGS if setting.name != "NOSTR_PROJECT_ROOT"}
    settings = load_settings({"NOSTR_PROJECT_ROOT": str(project), **empty})
    assert settings == load_settings({"NOSTR_PROJECT_ROOT": str(project)})


def test_relays_file_lines_that_are_not_relay_urls_are_named_with_their_line(project):
    listed = project / "relays.txt"
    listed.write_text("# comment\nwss://good.example\nws//host\n\nhtp://host  # typo\n")
    problems = refusal({"NOSTR_PROJECT_ROOT": str(project), "NOSTR_RELAYS_FILE": str(listed)})
    assert len(problems) == 1
    assert problems[0].startswith(f"NOSTR_RELAYS_FILE={str(listed)!r}: ")
    assert "line 3 'ws//host' (bad_scheme)" in problems[0]
    assert "line 5 'htp://host' (bad_scheme)" in problems[0]


def test_relays_file_relative_to_the_root_and_read_in_order(project):
    (project / "data" / "relays.txt").write_text("wss://b.example\nwss://a.example/\n")
    settings = load_settings({"NOSTR_PROJECT_ROOT": str(project)})
    assert settings.relays_file == project.resolve() / "data" / "relays.txt"
    assert read_relays_file(settings.relays_file) == ("wss://b.example", "wss://a.example")


def test_a_relays_file_asked_for_must_exist(project):
    problems = refusal({"NOSTR_PROJECT_ROOT": str(project), "NOSTR_RELAYS_FILE": "missing.txt"})
    assert problems == [
        f"NOSTR_RELAYS_FILE={str(project.resolve() / 'missing.txt')!r}: "
        "cannot read: No such file or directory"
    ]


def test_a_project_root_that_is_not_a_folder_is_refused(tmp_path):
    problems = refusal({"NOSTR_PROJECT_ROOT": str(tmp_path / "nowhere")})
    assert problems == [
        f"NOSTR_PROJECT_ROOT={str(tmp_path / 'nowhere')!r}: expected an existing folder"
    ]


def test_project_root_is_the_checkout_before_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_project_root({}) == ROOT
    assert find_project_root({"NOSTR_PROJECT_ROOT": str(tmp_path)}) == tmp_path.resolve()


def test_installed_package_uses_the_working_directory(project, monkeypatch):
    # A wheel lives in site-packages, which holds no dbt_project/.
    fake_package = project / "site-packages" / "nostr_assets" / "settings.py"
    monkeypatch.setattr(settings_module, "__file__", str(fake_package))
    monkeypatch.chdir(project)
    assert find_project_root({}) == project.resolve()


def test_only_checks_the_settings_asked_for(project):
    environ = {
        "NOSTR_PROJECT_ROOT": str(project),
        "NOSTR_PARTITIONS_START": "garbage",
        "NOSTR_RELAYS_FILE": "missing.txt",
        "NOSTR_CONCURRENCY": "4",
    }
    settings = load_settings(environ, only=["NOSTR_CONCURRENCY"])
    assert settings.concurrency == 4
    assert settings.partitions_start == DEFAULT_PARTITIONS_START
    with pytest.raises(KeyError):
        load_settings(environ, only=["NOSTR_NO_SUCH_THING"])


def test_the_readme_configuration_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Configuration") :].split("\n\n| variable")[1].split("\n\n")[0]
    listed = set(re.findall(r"`(NOSTR_[A-Z0-9_]+)`", table))
    assert listed == {setting.name for setting in SETTINGS}


def test_the_monitor_key_is_checked_but_never_repeated():
    secret = "ab" * 31 + "zz"  # 64 characters, not hex: refused
    with pytest.raises(SettingsError) as refused:
        load_settings({"NOSTR_MONITOR_SECRET_KEY": secret}, only=["NOSTR_MONITOR_SECRET_KEY"])
    (line,) = refused.value.problems
    assert line.startswith("NOSTR_MONITOR_SECRET_KEY='<hidden>': expected 64 hex")
    assert secret not in str(refused.value)
    settings = load_settings(
        {
            "NOSTR_MONITOR_SECRET_KEY": "ab" * 32,
            "NOSTR_MONITOR_PUBLISH_RELAYS": "wss://Relay.Example.com",
        },
        only=["NOSTR_MONITOR_SECRET_KEY", "NOSTR_MONITOR_PUBLISH_RELAYS"],
    )
    assert settings.monitor_secret_key_set is True  # whether it is set, never the key itself
    assert "ab" * 32 not in repr(settings)
    assert settings.monitor_publish_relays == ("wss://relay.example.com",)
