"""Checkpoint registry, cache and resumable downloads, against a local HTTP server.

The server (loopback, ephemeral port, own thread) serves one virtual file: zeros followed by a
random tail, so a file the size of an official checkpoint costs little memory. It honours
`Range: bytes=N-` unless told not to, can cut the connection after some bytes, and counts the
bytes it sends.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from masklet import cli
from masklet import weights as w
from masklet.errors import CheckpointError, ConfigError

TAIL = os.urandom(300_000)
RunCli = Callable[..., tuple[int, str, str]]


@dataclass
class ServedFile:
    """What the fake server serves and what it observed."""

    path: str
    size: int
    tail: bytes = TAIL
    honor_range: bool = True
    send_length: bool = True
    cut_after: int | None = None  # the next response stops after this many body bytes
    bytes_served: int = 0
    ranges: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def content(self, start: int = 0) -> bytes:
        """Bytes from `start` to the end (only used for small files or near the end)."""
        zeros = max(0, self.size - len(self.tail) - start)
        return bytes(zeros) + self.tail[max(0, start - (self.size - len(self.tail))) :]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        served = self.server.served
        served.paths.append(self.path)
        served.ranges.append(self.headers.get("Range"))
        if self.path != served.path:
            self.send_error(404)
            return
        start = self._start_of_range(served)
        if start is None:
            return
        body = served.content(start)
        if served.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.cut_after is not None:
            body, served.cut_after = body[: served.cut_after], None
        served.bytes_served += len(body)  # counted first: the client may finish reading early
        self.wfile.write(body)

    def _start_of_range(self, served: ServedFile) -> int | None:
        """Send the status line and range headers; return the first byte to send."""
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match is None or not served.honor_range:
            self.send_response(200)
            return 0
        start = int(match.group(1))
        if start >= served.size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{served.size}")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{served.size - 1}/{served.size}")
        return start


class _Server(http.server.ThreadingHTTPServer):
    served: ServedFile


@pytest.fixture
def server() -> Iterator[tuple[str, ServedFile]]:
    """A loopback HTTP server; yields its base URL and the file it serves."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.served = ServedFile(path="/fake/fake.pt", size=len(TAIL))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxies for loopback, no inherited overrides; the cache defaults to a temp dir."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv(w.BASE_URL_ENV, raising=False)
    monkeypatch.setenv(w.HOME_ENV, str(tmp_path / "home"))


def _entry(base_url: str, served: ServedFile) -> w.WeightsEntry:
    return w.WeightsEntry("fake", "fake.pt", base_url + served.path, served.size)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/x/fake.pt"


def test_full_download_records_sha256(server: tuple[str, ServedFile], tmp_path: Path) -> None:
    base_url, served = server
    path = w.download(_entry(base_url, served), tmp_path)  # progress bar off: not a terminal
    assert path == tmp_path / "fake.pt"
    assert path.read_bytes() == TAIL
    assert not (tmp_path / "fake.pt.part").exists()
    assert served.bytes_served == len(TAIL) and served.ranges == [None]
    records = json.loads((tmp_path / w.CHECKSUMS_FILE).read_text())
    assert records["fake.pt"]["sha256"] == hashlib.sha256(TAIL).hexdigest()
    w.download(_entry(base_url, served), tmp_path, progress=False)  # cached: no request
    assert len(served.paths) == 1


def test_interrupted_download_resumes_with_range(
    server: tuple[str, ServedFile], tmp_path: Path
) -> None:
    base_url, served = server
    served.cut_after = 100_000
    with pytest.raises(CheckpointError, match="run again to resume") as caught:
        w.download(_entry(base_url, served), tmp_path, progress=False, timeout=5)
    assert "\n" not in str(caught.value)
    assert (tmp_path / "fake.pt.part").stat().st_size == 100_000
    assert not (tmp_path / "fake.pt").exists()
    path = w.download(_entry(base_url, served), tmp_path, progress=False, timeout=5)
    assert served.ranges == [None, "bytes=100000-"]
    assert served.bytes_served == len(TAIL)  # nothing sent twice
    assert path.read_bytes() == TAIL
    assert not (tmp_path / "fake.pt.part").exists()


def test_server_ignoring_range_restarts(server: tuple[str, ServedFile], tmp_path: Path) -> None:
    base_url, served = server
    served.honor_range = False
    served.cut_after = 120_000
    with pytest.raises(CheckpointError):
        w.download(_entry(base_url, served), tmp_path, progress=False, timeout=5)
    path = w.download(_entry(base_url, served), tmp_path, progress=False, timeout=5)
    assert served.ranges == [None, "bytes=120000-"]
    assert served.bytes_served == 120_000 + len(TAIL)
    assert path.read_bytes() == TAIL


def test_part_longer_than_expected_restarts(server: tuple[str, ServedFile], tmp_path: Path) -> None:
    base_url, served = server
    (tmp_path / "fake.pt.part").write_bytes(b"x" * (len(TAIL) + 10))
    path = w.download(_entry(base_url, served), tmp_path, progress=False)
    assert path.read_bytes() == TAIL and served.ranges == [None]


@pytest.mark.parametrize("delta", [1, -1])
def test_wrong_size_raises_and_keeps_nothing(
    server: tuple[str, ServedFile], tmp_path: Path, delta: int
) -> None:
    base_url, served = server
    with pytest.raises(CheckpointError, match=f"expected {len(TAIL) + delta}"):
        w.download(
            _entry(base_url, served), tmp_path, progress=False, expected_size=len(TAIL) + delta
        )
    assert list(tmp_path.iterdir()) == []


def test_oversized_body_without_length_raises(
    server: tuple[str, ServedFile], tmp_path: Path
) -> None:
    base_url, served = server
    served.send_length = False
    with pytest.raises(CheckpointError, match="more than the expected"):
        w.download(_entry(base_url, served), tmp_path, progress=False, expected_size=1000)
    assert list(tmp_path.iterdir()) == []


def test_offline_error_is_one_line_with_url_and_path(tmp_path: Path) -> None:
    url = _closed_port_url()
    entry = w.WeightsEntry("fake", "fake.pt", url, 10)
    with pytest.raises(CheckpointError) as caught:
        w.download(entry, tmp_path, progress=False, timeout=5)
    message = str(caught.value)
    assert "\n" not in message
    assert url in message and str(tmp_path / "fake.pt") in message
    assert "refused" in message.lower()
    assert not (tmp_path / "fake.pt").exists() and not (tmp_path / "fake.pt.part").exists()


def test_http_error_is_reported(server: tuple[str, ServedFile], tmp_path: Path) -> None:
    base_url, served = server
    entry = w.WeightsEntry("fake", "fake.pt", base_url + "/missing.pt", served.size)
    with pytest.raises(CheckpointError, match="HTTP 404"):
        w.download(entry, tmp_path, progress=False)


def test_base_url_override_replaces_official_prefix(
    server: tuple[str, ServedFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = server
    served.path = "/mirror/092824/sam2.1_hiera_tiny.pt"
    monkeypatch.setenv(w.BASE_URL_ENV, base_url + "/mirror/")
    entry = w.get_weights("sam2.1_hiera_t")
    assert entry.download_url() == base_url + served.path
    path = w.download("sam2.1_hiera_t", progress=False, expected_size=len(TAIL))
    assert path == tmp_path / "home" / "sam2.1_hiera_tiny.pt"
    assert path.read_bytes() == TAIL


def test_verify_detects_corruption_after_recorded_sha256(
    server: tuple[str, ServedFile], tmp_path: Path
) -> None:
    base_url, served = server
    entry = _entry(base_url, served)
    path = w.download(entry, tmp_path, progress=False)
    result = w.verify(entry, tmp_path)
    assert result.ok and result.actual_sha256 == hashlib.sha256(TAIL).hexdigest()
    assert w.resolve_checkpoint(entry, cache_dir=tmp_path) == path
    data = bytearray(path.read_bytes())
    data[1234] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a fresh mtime, whatever the clock's granularity
    result = w.verify(entry, tmp_path)
    assert not result.ok and "SHA-256" in (result.problem or "")
    with pytest.raises(CheckpointError, match="corrupt"):
        w.resolve_checkpoint(entry, cache_dir=tmp_path)
    assert len(served.paths) == 1


def test_verify_hashes_even_when_size_and_mtime_are_unchanged(
    server: tuple[str, ServedFile], tmp_path: Path
) -> None:
    base_url, served = server
    path = w.download(_entry(base_url, served), tmp_path, progress=False)
    before = path.stat()
    with path.open("r+b") as cached:
        cached.write(bytes([TAIL[0] ^ 1]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "SHA-256" in (w.verify(_entry(base_url, served), tmp_path).problem or "")


def test_redownload_with_other_digest_is_rejected(
    server: tuple[str, ServedFile], tmp_path: Path
) -> None:
    base_url, served = server
    w.download(_entry(base_url, served), tmp_path, progress=False).unlink()
    served.tail = os.urandom(len(TAIL))
    with pytest.raises(CheckpointError, match="SHA-256"):
        w.download(_entry(base_url, served), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [w.CHECKSUMS_FILE]


def test_verify_registry_entry_missing_and_wrong_size(tmp_path: Path) -> None:
    assert "not downloaded" in (w.verify("sam2.1_hiera_s", tmp_path).problem or "")
    (tmp_path / "sam2.1_hiera_small.pt").write_bytes(b"short")
    result = w.verify("sam2.1_hiera_s", tmp_path)
    assert result.actual_size == 5 and "expected 184416285" in (result.problem or "")


def test_hand_placed_file_gets_digest_recorded(tmp_path: Path) -> None:
    entry = w.WeightsEntry("fake", "fake.pt", "http://127.0.0.1:9/fake.pt", len(TAIL))
    (tmp_path / "fake.pt").write_bytes(TAIL)
    first = w.verify(entry, tmp_path)
    assert first.ok and first.newly_recorded and first.expected_sha256 is None
    second = w.verify(entry, tmp_path)
    assert second.ok and not second.newly_recorded
    assert second.expected_sha256 == hashlib.sha256(TAIL).hexdigest()


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("sam2.1_hiera_t", "sam2.1_hiera_t"),
        ("sam2.1_hiera_tiny", "sam2.1_hiera_t"),
        ("sam2.1_hiera_tiny.pt", "sam2.1_hiera_t"),
        ("facebook/sam2.1-hiera-tiny", "sam2.1_hiera_t"),
        ("facebook/sam2-hiera-base-plus", "sam2_hiera_b+"),
        ("sam2_hiera_base_plus", "sam2_hiera_b+"),
        ("SAM2_Hiera_Large.pt", "sam2_hiera_l"),
        ("sam2.1_hiera_s", "sam2.1_hiera_s"),
    ],
)
def test_alias_resolution(alias: str, name: str) -> None:
    assert w.get_weights(alias).name == name


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=re.escape("sam2.1_hiera_b+")):
        w.get_weights("sam3_hiera_t")


def test_registry_matches_official_facts() -> None:
    assert len(w.WEIGHTS) == 8
    tiny = w.WEIGHTS["sam2.1_hiera_t"]
    assert tiny.url == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    )
    assert tiny.size == 156_008_466
    large = w.WEIGHTS["sam2_hiera_l"]
    assert large.url.endswith("/072824/sam2_hiera_large.pt") and large.size == 897_952_466


def test_cache_dir_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert w.default_cache_dir() == tmp_path / "home"
    assert {s.path.parent for s in w.list_weights()} == {tmp_path / "home"}
    monkeypatch.delenv(w.HOME_ENV)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert w.default_cache_dir() == tmp_path / "xdg" / "masklet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert w.default_cache_dir() == Path.home() / ".cache" / "masklet"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert w.default_cache_dir() == Path.home() / "Library" / "Caches" / "masklet"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert w.default_cache_dir() == tmp_path / "local" / "masklet"


def test_resolve_checkpoint_paths_and_missing(tmp_path: Path) -> None:
    file = tmp_path / "mine.pt"
    file.write_bytes(b"x")
    assert w.resolve_checkpoint("sam2.1_hiera_t", checkpoint=file) == file
    with pytest.raises(CheckpointError, match="not found"):
        w.resolve_checkpoint(checkpoint=tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match=re.escape("weights download sam2.1_hiera_t")):
        w.resolve_checkpoint("sam2.1_hiera_t", download_missing=False)
    with pytest.raises(CheckpointError):
        w.resolve_checkpoint()


# ---------------------------------------------------------------- CLI


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[RunCli]:
    """Call `masklet.cli.main` with only `weights` registered; return (code, stdout, stderr)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("masklet.cli.weights",))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run


def test_cli_list_shows_names_sizes_and_cached_flag(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "sam2_hiera_small.pt").write_bytes(b"x")
    with (tmp_path / "sam2.1_hiera_tiny.pt").open("wb") as complete:
        complete.truncate(w.WEIGHTS["sam2.1_hiera_t"].size)  # sparse, right size
    with (tmp_path / "sam2.1_hiera_large.pt.part").open("wb") as part:
        part.truncate(449_041_806)
    code, out, _ = run_cli("weights", "--cache-dir", str(tmp_path), "list")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(w.WEIGHTS)
    assert "156.0 MB" in rows["sam2.1_hiera_t"] and " yes " in rows["sam2.1_hiera_t"]
    assert "898.0 MB" in rows["sam2_hiera_l"] and " no " in rows["sam2_hiera_l"]
    assert " wrong size " in rows["sam2_hiera_s"]
    assert str(tmp_path / "sam2_hiera_small.pt") in rows["sam2_hiera_s"]
    assert "partial 50%" in rows["sam2.1_hiera_l"]


def test_cli_download_resumes_then_verify(
    run_cli: RunCli, server: tuple[str, ServedFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = server
    entry = w.WEIGHTS["sam2_hiera_t"]
    served.path, served.size = "/072824/sam2_hiera_tiny.pt", entry.size
    monkeypatch.setenv(w.BASE_URL_ENV, base_url)
    home = tmp_path / "home"
    home.mkdir()
    start = entry.size - len(TAIL)
    with (home / "sam2_hiera_tiny.pt.part").open("wb") as part:
        part.truncate(start)  # sparse: all zeros, like the served file's head
    code, out, err = run_cli("weights", "download", "facebook/sam2-hiera-tiny", "--no-progress")
    assert (code, err) == (0, "")
    assert f"downloaded to {home / 'sam2_hiera_tiny.pt'}" in out
    assert served.ranges == [f"bytes={start}-"] and served.bytes_served == len(TAIL)
    code, out, _ = run_cli("weights", "download", "sam2_hiera_t")
    assert code == 0 and "already cached" in out and len(served.paths) == 1
    code, out, _ = run_cli("weights", "verify")
    assert code == 0 and out.startswith("ok     sam2_hiera_t") and "match" in out
    with (home / "sam2_hiera_tiny.pt").open("r+b") as cached:
        cached.seek(entry.size - 1)
        cached.write(bytes([TAIL[-1] ^ 1]))
    code, out, _ = run_cli("weights", "verify", "sam2_hiera_t", "sam2.1_hiera_t")
    assert code == 1
    assert "FAILED sam2_hiera_t: SHA-256" in out and "FAILED sam2.1_hiera_t: not downloaded" in out


def test_cli_download_offline_exits_2_with_one_line(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url = _closed_port_url().removesuffix("/x/fake.pt")
    monkeypatch.setenv(w.BASE_URL_ENV, base_url)
    code, out, err = run_cli("weights", "download", "sam2.1_hiera_b+", "--no-progress")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("masklet: error: could not download")
    assert f"{base_url}/092824/sam2.1_hiera_base_plus.pt" in err
    assert str(tmp_path / "home" / "sam2.1_hiera_base_plus.pt") in err


def test_cli_unknown_name_exits_2(run_cli: RunCli) -> None:
    code, _, err = run_cli("weights", "verify", "sam9_hiera_t")
    assert code == 2 and "unknown checkpoint" in err
