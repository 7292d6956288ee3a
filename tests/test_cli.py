"""Protects the ``nostr-analytics`` command line: time parsing, the crawl's JSONL and JSON
summary against the real nostr-relay, exit codes, and one-line errors for what cannot be done.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from relays import BASE_HOUR, HOUR, in_window

from nostr_assets.cli import main, parse_time
from nostr_assets.lib.protocol.event import decode_event

pytestmark = pytest.mark.timeout(60)

CLI = Path(sys.executable).with_name("nostr-analytics")


def test_parse_time_forms():
    now = 1_704_070_000.7
    assert parse_time("1704067200") == 1_704_067_200
    assert parse_time("2024-01-01T00:00:00Z") == 1_704_067_200
    assert parse_time("2024-01-01T01:00:00+01:00") == 1_704_067_200
    assert parse_time("2024-01-01T00:00:00") == 1_704_067_200  # no offset: UTC
    assert parse_time("now", now) == 1_704_070_000
    assert parse_time("-2h", now) == 1_704_070_000 - 7200
    assert parse_time("-30m", now) == 1_704_070_000 - 1800


def test_crawl_writes_sorted_unique_jsonl_and_a_summary(
    relay_a, relay_b, test_events, tmp_path, capsys
):
    relays_file = tmp_path / "relays.txt"
    relays_file.write_text(f"# test relays\n{relay_a.url}\n\n{relay_b.url}/  # trailing slash\n")
    out = tmp_path / "events.jsonl"
    code = main(
        [
            "crawl",
            "--relays-file",
            str(relays_file),
            "--relay",
            relay_a.url,
            "--since",
            "2024-01-01T00:00:00Z",
            "--until",
            str(BASE_HOUR + HOUR),
            "--kinds",
            "1,7",
            "--out",
            str(out),
            "--allow-private",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    expected = [e for e in in_window(test_events, BASE_HOUR, BASE_HOUR + HOUR) if e.kind in (1, 7)]
    lines = out.read_bytes().splitlines()
    assert [decode_event(line).id for line in lines] == [e.id for e in expected]
    summary = json.loads(captured.out)
    assert summary["events"] == len(expected)
    assert len(summary["relays"]) == 2  # the repeated relay was crawled once
    assert summary["sightings"] > len(expected)  # events held by both relays count twice
    assert captured.err == ""  # no progress display when stderr is not a terminal


def test_all_relays_failing_is_a_one_line_error(capsys):
    code = main(
        [
            "crawl",
            "--relay",
            "ws://127.0.0.1:1",
            "--relay",
            "wss://a b",
            "--since",
            "-2h",
            "--until",
            "-1h",
            "--allow-private",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("\n") == 1 and "no relay could be crawled" in captured.err
    assert json.loads(captured.out)["rejected_urls"] == {"wss://a b": "bad_characters"}


@pytest.mark.parametrize(
    "argv",
    [
        ["crawl", "--since", "0", "--until", "1"],  # no relays
        ["crawl", "--relay", "ws://x.example", "--since", "yesterday", "--until", "now"],
        ["crawl", "--relay", "ws://x.example", "--since", "10", "--until", "5"],
        ["crawl", "--relay", "ws://x.example", "--since", "0", "--until", "1", "--kinds", "a"],
        ["relay-info", "http://not-a-relay.example"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip()


def test_unwritable_output_and_binary_relay_list_are_one_line_errors(tmp_path, capsys):
    binary = tmp_path / "relays.bin"
    binary.write_bytes(b"\xff\xfe\x00wss://x")
    cases = [
        ["--relays-file", str(binary)],
        ["--relay", "ws://x.example", "--out", str(tmp_path / "missing" / "out.jsonl")],
    ]
    for extra in cases:
        assert main(["crawl", "--since", "0", "--until", "1", *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")


def test_relay_info_refuses_loopback_without_allow_private(relay_all, capsys):
    code = main(["relay-info", relay_all.url, "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "refused_address" in err and "--allow-private" in err


def test_relay_info_prints_the_probe(relay_all, capsys):
    assert main(["relay-info", relay_all.url, "--allow-private", "--timeout", "5"]) == 0
    probe = json.loads(capsys.readouterr().out)
    assert probe["reachable"] is True and probe["connected_ip"] == "127.0.0.1"
    assert probe["nip11"]["document"]["name"] == "test relay"
    assert probe["rtt_open_ms"] > 0 and probe["rtt_read_ms"] > 0


def test_console_script_with_relative_times(relay_all, tmp_path):
    # "--since -2h": a value that looks like an option must still be read as a time.
    out = tmp_path / "recent.jsonl"
    done = subprocess.run(
        [
            str(CLI),
            "crawl",
            "--relay",
            relay_all.url,
            "--since",
            "-2h",
            "--until",
            "now",
            "--out",
            str(out),
            "--allow-private",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["events"] == 0 and summary["relays"][0]["error_class"] is None
    assert out.read_bytes() == b""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOSTR_KINDS", "abc"),
        ("NOSTR_CONCURRENCY", "0"),
        ("NOSTR_CONNECT_TIMEOUT", "nan"),
        ("NOSTR_IDLE_TIMEOUT", "inf"),
        ("NOSTR_TOTAL_TIMEOUT", "-1"),
        ("NOSTR_ALLOW_PRIVATE_ADDRESSES", "maybe"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2_before_any_work(
    relay_all, tmp_path, monkeypatch, capsys, name, value
):
    monkeypatch.setenv(name, value)
    out = tmp_path / "never.jsonl"
    argv = ["crawl", "--relay", relay_all.url, "--since", "0", "--until", "1", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {name}={value!r}: expected ")
    assert captured.out == "" and not out.exists()  # nothing crawled, nothing written


def test_settings_the_cli_does_not_use_do_not_stop_it(relay_all, monkeypatch, capsys):
    # The warehouse's partitions are the code location's business, not a shell crawl's.
    monkeypatch.setenv("NOSTR_PARTITIONS_START", "garbage")
    argv = ["crawl", "--relay", relay_all.url, "--since", "0", "--until", "1", "--allow-private"]
    assert main(argv) == 0
    capsys.readouterr()


def test_command_line_options_are_checked_like_the_settings(capsys):
    cases = [("--concurrency", "0"), ("--timeout", "inf"), ("--timeout", "nan"), ("--kinds", "abc")]
    for option, value in cases:
        argv = ["crawl", "--relay", "ws://x.example", "--since", "0", "--until", "1"]
        assert main([*argv, option, value]) == 2
        assert f"argument {option}: {value!r}: expected" in capsys.readouterr().err


def test_the_cli_reads_kinds_and_private_addresses_from_the_settings(
    relay_all, test_events, monkeypatch, capsys
):
    # "on" is a true word everywhere now; it used to be false for the CLI only.
    monkeypatch.setenv("NOSTR_ALLOW_PRIVATE_ADDRESSES", "on")
    monkeypatch.setenv("NOSTR_KINDS", "7")
    argv = ["crawl", "--relay", relay_all.url, "--since", str(BASE_HOUR)]
    assert main([*argv, "--until", str(BASE_HOUR + HOUR)]) == 0
    summary = json.loads(capsys.readouterr().out)
    expected = [e for e in in_window(test_events, BASE_HOUR, BASE_HOUR + HOUR) if e.kind == 7]
    assert expected and summary["kinds"] == [7] and summary["events"] == len(expected)
    assert main(["relay-info", relay_all.url]) == 0
    assert json.loads(capsys.readouterr().out)["reachable"] is True


FULL_DISK_CHILD = """
import resource, signal, sys
from nostr_assets.cli import main
# The file-size limit makes the kernel refuse writes past 1 kB (EFBIG), as a full disk would.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_write_keeps_the_summary_and_leaves_no_temporary_file(relay_all, tmp_path):
    out = tmp_path / "events.jsonl"
    since, until = str(BASE_HOUR), str(BASE_HOUR + HOUR - 1)
    argv = ["crawl", "--relay", relay_all.url, "--since", since, "--until", until]
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, *argv, "--out", str(out), "--allow-private"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)  # the crawl is reported, not thrown away
    assert summary["events"] > 10 and summary["out"] is None
    assert done.stderr.count("\n") == 1
    assert "File too large" in done.stderr and f"{summary['events']} events" in done.stderr
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .tmp
