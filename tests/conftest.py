"""Shared fixtures: the feed farm on 127.0.0.1, config files, and the CLI run in-process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _find_feedfarm() -> Path | None:
    candidates = [os.environ.get("FEEDFARM"), ROOT.parent / "shared" / "feedfarm" / "feedfarm.py"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


FEEDFARM = _find_feedfarm()
needs_farm = pytest.mark.skipif(FEEDFARM is None,
                                reason="feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")


@dataclass
class Farm:
    """A running feedfarm server and its corpus."""

    port: int
    dir: Path
    process: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def feeds(self, faults: bool = False) -> list[dict[str, Any]]:
        args = [sys.executable, str(FEEDFARM), "yaml", "--dir", str(self.dir),
                "--port", str(self.port)] + (["--faults"] if faults else [])
        rows: list[dict[str, Any]] = yaml.safe_load(subprocess.check_output(args, text=True))
        return rows

    def stats(self, reset: bool = False) -> dict[str, Any]:
        url = f"{self.base}/_stats?paths" + ("&reset" if reset else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            data: dict[str, Any] = json.load(r)
            return data

    def truth(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads((self.dir / "truth.json").read_text())["items"]
        return items


def start_farm(corpus: Path, *extra: str) -> Farm:
    assert FEEDFARM is not None
    proc = subprocess.Popen(
        [sys.executable, str(FEEDFARM), "serve", "--dir", str(corpus), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"feedfarm did not start: {line!r}")
    return Farm(int(match.group(1)), corpus, proc)


@contextmanager
def serving_farm(corpus: Path, *extra: str) -> Iterator[Farm]:
    """``start_farm``, stopped on the way out."""
    farm = start_farm(corpus, *extra)
    try:
        yield farm
    finally:
        farm.process.terminate()
        farm.process.wait(10)


def generate_corpus(out: Path, feeds: int, items: int, seed: int = 1) -> Path:
    assert FEEDFARM is not None
    subprocess.run([sys.executable, str(FEEDFARM), "generate", "--feeds", str(feeds), "--items",
                    str(items), "--seed", str(seed), "--out", str(out), "--epoch", "now"],
                   check=True, stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def farm_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if FEEDFARM is None:
        pytest.skip("feedfarm.py not found (set FEEDFARM=path/to/feedfarm.py)")
    return generate_corpus(tmp_path_factory.mktemp("farm") / "c20", feeds=20, items=10)


@pytest.fixture
def farm(farm_corpus: Path) -> Iterator[Farm]:
    """A fresh farm server (fresh request counters) over the shared 20-feed corpus."""
    with serving_farm(farm_corpus, "--slow-s", "30", "--hang-s", "60", "--huge-mb", "40",
                   "--bomb-mb", "200") as f:
        yield f


def make_config(
    directory: Path,
    members: list[dict[str, Any]],
    *,
    allow_private: bool = True,
    fetch: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
    database: str | None = None,
    name: str = "feeds.yaml",
    publish: dict[str, Any] | None = None,
    base_url: str = "https://sindikasi.example.id/",
) -> Path:
    """Write a feeds.yaml into ``directory`` and return its path."""
    cfg: dict[str, Any] = {
        "association": {"name": "AMSI Jawa Timur", "base_url": base_url,
                        "language": "id", "timezone": "Asia/Jakarta"},
        "storage": {"url": database or "sqlite:///var/aggregator.db"},
        "output_dir": "output",
        "fetch": {"allow_private_networks": allow_private, "deadline": 10,
                  "timeout": {"connect": 3, "read": 5, "write": 3, "pool": 10},
                  "parse_workers": 0, **(fetch or {})},
        "members": members,
    }
    if schedule:
        cfg["schedule"] = schedule
    if publish:
        cfg["publish"] = publish
    path = directory / name
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def farm_members(farm: Farm, faults: bool = False) -> list[dict[str, Any]]:
    return [
        {"id": r["name"], "name": r["title"], "site": f"https://{r['name']}.example/",
         "feeds": [r["url"]], "region": r["region"]}
        for r in farm.feeds(faults=faults)
    ]


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the aggregator CLI in-process: ``cli("--config", path, "run", "--once")``."""

    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def feeds_json(cli: Any, config: Path) -> dict[str, dict[str, Any]]:
    """`aggregator feeds --json`, keyed by feed URL as configured."""
    result = cli("--config", config, "feeds", "--json")
    assert result.code == 0, result.err
    return {row["config_url"]: row for row in result.json()}


POSTGRES_ENV = "AGGREGATOR_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's own AGGREGATOR_CONFIG must not choose the file under test."""
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is also the cwd, so that anything written by mistake shows up."""
    work = tmp_path / "site"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database: a SQLite file, or a schema of its own on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if base is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}, e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} is not reachable: {exc.orig}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class StaticSite:
    """Files from a folder served on 127.0.0.1 (feeds written by the test itself)."""

    root: Path
    port: int

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def write(self, name: str, body: str) -> str:
        (self.root / name).write_text(body, encoding="utf-8")
        return self.url(name)


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[StaticSite]:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield StaticSite(root, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def rss(title: str, items: list[dict[str, str]]) -> str:
    """A small RSS 2.0 document: items need title, link, guid, date (RFC 822) and html."""
    from html import escape

    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<guid>{escape(i['guid'])}</guid><pubDate>{i['date']}</pubDate>"
        f"<description>{escape(i['html'])}</description></item>"
        for i in items
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{escape(title)}</title><link>https://example.id/</link>"
            f"<description>x</description>{body}</channel></rss>")


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file and folder under ``directory`` (hidden ones too) with its contents."""
    found: dict[str, bytes] = {}
    for base, dirs, files in os.walk(directory):
        for d in dirs:
            found[os.path.relpath(os.path.join(base, d), directory) + "/"] = b""
        for f in files:
            path = os.path.join(base, f)
            found[os.path.relpath(path, directory)] = Path(path).read_bytes()
    return found
