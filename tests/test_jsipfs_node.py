"""The js-ipfs test node is offline and reachable only on 127.0.0.1, and its npm lock file
never sends npm anywhere but the registry."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import tests.jsipfs
from tests.jsipfs import PROJECT, JsIpfs, jsipfs_binary
from tests.netcheck import LOOPBACK, off_loopback, parse_table, sockets_of

REGISTRY = "https://registry.npmjs.org/"


def test_the_node_holds_internet_sockets_only_on_127_0_0_1(jsipfs: JsIpfs) -> None:
    with httpx.Client(base_url=f"{jsipfs.api_url}/api/v0/") as client:
        assert client.post("version").status_code == 200
        # The client's kept-alive connection is open while the node's sockets are read.
        sockets = sockets_of(jsipfs.process.pid)
        listening = [s for s in sockets if s.table == "tcp" and s.state == "0A"]
        established = [s for s in sockets if s.table == "tcp" and s.state == "01"]
    assert {s.local_port for s in listening} >= {int(jsipfs.api_url.rsplit(":", 1)[1])}
    assert established, "the check must see the node's end of our connection"
    assert [str(s) for s in sockets if off_loopback(s)] == []
    assert not [s for s in sockets if s.table.startswith("udp") and s.local != LOOPBACK]


def test_the_socket_check_reports_a_process_bound_elsewhere_than_127_0_0_1() -> None:
    # 127.0.0.2 stands in for the wildcard: off 127.0.0.1, yet reachable from this machine only.
    script = (
        "import socket, sys\n"
        "t = socket.socket(); t.bind(('127.0.0.2', 0)); t.listen()\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.2', 0))\n"
        "print('ready', flush=True); sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"ready"
            found = {(s.table, str(s.local)) for s in sockets_of(child.pid) if off_loopback(s)}
        finally:
            child.kill()
    offending = found
    assert offending == {("tcp", "127.0.0.2"), ("udp", "127.0.0.2")}


def test_the_socket_check_reads_wildcard_binds_as_off_loopback() -> None:
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid\n"
    tcp = header + (
        "   0: 00000000:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 11 1\n"
        "   1: 0100007F:138A 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12 1\n"
        "   2: 0100007F:138A 0A00000A:D431 01 00000000:00000000 00:00000000 00000000 0 0 13 1\n"
    )
    tcp6 = header + (
        "   0: 00000000000000000000000000000000:1389 00000000000000000000000000000000:0000 0A"
        " 00000000:00000000 00:00000000 00000000 0 0 14 1\n"
        "   1: 0000000000000000FFFF00000100007F:138B 00000000000000000000000000000000:0000 0A"
        " 00000000:00000000 00:00000000 00000000 0 0 15 1\n"
    )
    udp = header + (
        "   0: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 16 1\n"
    )
    parsed = parse_table("tcp", tcp) + parse_table("tcp6", tcp6) + parse_table("udp", udp)
    flagged = {s.inode: off_loopback(s) for s in parsed}
    # the IPv4 wildcard :5001, a peer 10.0.0.10, [::]:5001 and a UDP wildcard :5353 are off;
    # 127.0.0.1 listening, also as an IPv4-mapped IPv6 address, is not.
    assert flagged == {11: True, 12: False, 13: True, 14: True, 15: False, 16: True}


def test_the_node_config_is_offline_and_on_127_0_0_1(jsipfs: JsIpfs) -> None:
    config = json.loads((jsipfs.repo / "config").read_text())
    addresses = config["Addresses"]
    for key in ("API", "Gateway", "RPC"):
        assert addresses[key].startswith("/ip4/127.0.0.1/tcp/"), key
    assert addresses["Swarm"] == addresses["Announce"] == addresses["Delegates"] == []
    assert config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Discovery"]["webRTCStar"]["Enabled"] is False
    assert config["Pubsub"]["Enabled"] is False
    assert config["Routing"]["Type"] == "none"


def test_a_missing_install_names_the_command_that_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.jsipfs, "PROJECT", tmp_path)
    with pytest.raises(RuntimeError, match="run tests/node/install"):
        jsipfs_binary()


def test_a_node_started_by_a_test_is_killed_and_removed_after() -> None:
    started = time.monotonic()
    with JsIpfs.start() as node:
        pid, base = node.process.pid, node.repo.parent
        assert httpx.post(f"{node.api_url}/api/v0/version").status_code == 200
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not base.exists()
    assert time.monotonic() - started < 120


def _lock_entries() -> dict[str, dict[str, object]]:
    packages: dict[str, dict[str, object]] = json.loads(
        (PROJECT / "package-lock.json").read_text()
    )["packages"]
    return packages


def test_the_npm_lock_names_only_the_registry_and_local_directories() -> None:
    entries = _lock_entries()
    assert "node_modules/ipfs" in entries
    for path, entry in entries.items():
        if path == "":
            continue
        resolved = entry.get("resolved")
        if entry.get("link"):
            # A local package of this project (the empty WebRTC stand-ins).
            assert isinstance(resolved, str), path
            target = (PROJECT / resolved).resolve()
            assert target.is_relative_to(PROJECT), path
            assert (target / "package.json").is_file(), path
            continue
        if path.startswith("stubs/"):
            continue  # the local packages themselves (no download)
        # A registry tarball: npm checks it against the integrity hash; resolved is the
        # registry or left out (npm then asks the configured registry).
        assert str(entry.get("integrity", "")).startswith("sha512-"), path
        assert resolved is None or str(resolved).startswith(REGISTRY), (path, resolved)
        for field in ("resolved", "version"):
            value = str(entry.get(field, "")).lower()
            assert "git" not in value, path
            assert "://" not in value.removeprefix(REGISTRY), path


def test_the_lock_pins_mortice_and_leaves_out_the_webrtc_transports() -> None:
    entries = _lock_entries()
    assert entries["node_modules/mortice"]["version"] == "3.1.0"
    assert entries["node_modules/wrtc"] == {"resolved": "stubs/wrtc", "link": True}
    assert entries["node_modules/electron-webrtc"] == {
        "resolved": "stubs/electron-webrtc",
        "link": True,
    }
    assert not any("headless" in path for path in entries)
