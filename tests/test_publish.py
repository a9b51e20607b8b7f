"""Publishing through the public surface: `run --once` and `publish` write output_dir.

Three members on 127.0.0.1: one press release republished by all three with small edits, and
stories of their own about other places.  Checks which files appear, what the merged feed says
about the cluster, that unchanged files are left alone, that an incremental publish writes
exactly what a full one would, and the failure paths (read-only output, a held publish lease).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import feedparser
import pytest
from conftest import StaticSite, make_config, rss, snapshot

from aggregator.config import load_config
from aggregator.db import make_engine
from aggregator.publish.publisher import publish

BASE = "https://sindikasi.example.id/"

RELEASE = [
    "Pemerintah Kabupaten Sumenep membuka pendaftaran beasiswa santri berprestasi tahun ini "
    "bagi 750 santri dari pondok pesantren di seluruh daratan dan kepulauan Sumenep.",
    "Bupati Sumenep Achmad Fauzan mengatakan beasiswa senilai Rp 4,5 juta per santri itu "
    "diberikan untuk biaya pendidikan dan kitab selama satu tahun ajaran.",
    "Pendaftaran dibuka hingga 15 Desember melalui laman resmi Dinas Pendidikan Sumenep dan "
    "posko di setiap kantor kecamatan, termasuk di Pulau Kangean dan Pulau Sapeken.",
    "Menurut Fauzan, tahun lalu ada 612 santri penerima beasiswa dan 94 persen di antaranya "
    "menyelesaikan pendidikan tepat waktu.",
    "Seleksi dilakukan berdasarkan nilai rapor, hafalan, dan rekomendasi pengasuh pondok, "
    "sehingga santri dari keluarga kurang mampu mendapat prioritas.",
]


def _html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def _date(hours_ago: float) -> str:
    return format_datetime(datetime.now(UTC) - timedelta(hours=hours_ago))


OWN = {
    "suarajatim": [("Wali Kota Surabaya resmikan taman baca di Kecamatan Rungkut",
                    "SURABAYA, SuaraJatim - Wali Kota Surabaya meresmikan taman baca baru di "
                    "Kecamatan Rungkut yang menyediakan 3.000 buku untuk anak-anak kampung.", 3)],
    "kabarmadura": [("Nelayan Kalianget keluhkan harga solar",
                     "SUMENEP, KabarMadura - Nelayan di Kecamatan Kalianget, Kabupaten Sumenep, "
                     "mengeluhkan harga solar yang naik menjadi Rp 7.200 per liter di tingkat "
                     "pengecer sejak awal pekan.", 4)],
    "malangpost": [("Pemkot Malang tambah 12 bus sekolah gratis",
                    "MALANG, MalangPost - Pemerintah Kota Malang menambah 12 bus sekolah gratis "
                    "untuk rute Lowokwaru dan Blimbing mulai Senin depan, kata Wali Kota Malang.",
                    2)],
}


def _feeds(site: StaticSite, extra: dict[str, list[tuple[str, str, float]]] | None = None,
           ) -> list[dict[str, Any]]:
    copies = {
        "suarajatim": ("Pemkab Sumenep buka beasiswa untuk 750 santri",
                       "SUMENEP, SuaraJatim - " + RELEASE[0], RELEASE[1:], 30),
        "kabarmadura": ("Beasiswa santri berprestasi Sumenep dibuka",
                        "Sumenep (kabarmadura.id) - " + RELEASE[0],
                        [RELEASE[2], RELEASE[1], "Baca juga: Harga garam turun", *RELEASE[3:]],
                        20),
        "malangpost": ("750 santri Sumenep bisa daftar beasiswa Pemkab",
                       "MalangPost, Sumenep - " + RELEASE[0], RELEASE[1:4], 10),
    }
    members = []
    for mid, (title, lead, rest, hours) in copies.items():
        entries = [{"title": title, "link": f"https://{mid}.example/beasiswa-santri/",
                    "guid": f"{mid}-beasiswa", "date": _date(hours),
                    "html": _html([lead, *rest])}]
        for n, (t, text, h) in enumerate([*OWN[mid], *(extra or {}).get(mid, [])]):
            entries.append({"title": t, "link": f"https://{mid}.example/berita-{n}/",
                            "guid": f"{mid}-{n}", "date": _date(h), "html": _html([text])})
        url = site.write(f"{mid}.xml", rss(mid, entries))
        members.append({"id": mid, "name": {"suarajatim": "Suara Jatim",
                                            "kabarmadura": "Kabar Madura & Co",
                                            "malangpost": "Malang Post"}[mid],
                        "site": f"https://{mid}.example/", "feeds": [url],
                        "region": "Kota Surabaya"})
    return members


@pytest.fixture
def published(static_site: StaticSite, workdir: Path, cli: Any) -> Iterator[Path]:
    config = make_config(workdir, _feeds(static_site))
    result = cli("--config", config, "run", "--once", "--json")
    assert result.code == 0, result.err
    assert result.json()["published"]["written"] > 0
    yield config


def _out(config: Path) -> Path:
    return config.parent / "output"


def _touch_later(site: StaticSite) -> None:
    """The test server answers If-Modified-Since by whole seconds: make rewritten feeds newer."""
    later = datetime.now().timestamp() + 5
    for path in site.root.iterdir():
        os.utime(path, (later, later))


def test_a_cycle_publishes_every_file(published: Path) -> None:
    out = _out(published)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {"feed.xml", "atom.xml", "feed.json", "index.html", "sitemap.xml", "sources.opml",
                "members/suarajatim.xml", "members/kabarmadura.xml", "members/malangpost.xml",
                "sitemaps/news-suarajatim.xml", "sitemaps/news-kabarmadura.xml",
                "sitemaps/news-malangpost.xml"}
    for slug in ("kabupaten-sumenep", "madura", "kota-surabaya", "kota-malang"):
        expected |= {f"regions/{slug}.xml", f"regions/{slug}.atom", f"regions/{slug}.html"}
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if Path(n).name.startswith(".")], "temporary files left"


def test_merged_feed_has_one_entry_per_story_with_every_copy(published: Path) -> None:
    out = _out(published)
    atom = feedparser.parse((out / "atom.xml").read_bytes())
    # The release (three copies) and three stories of their own: four stories.
    assert len(atom.entries) == 4
    release = [e for e in atom.entries if "beasiswa-santri" in e.link]
    assert len(release) == 1
    entry = release[0]
    # The earliest copy represents the story; the others are related links with member names.
    assert entry.link == "https://suarajatim.example/beasiswa-santri/"
    assert entry.title == "Pemkab Sumenep buka beasiswa untuk 750 santri"
    related = {link.href: link.get("title") for link in entry.links if link.rel == "related"}
    assert related == {"https://kabarmadura.example/beasiswa-santri/": "Kabar Madura & Co",
                       "https://malangpost.example/beasiswa-santri/": "Malang Post"}
    assert {t.label for t in entry.tags} >= {"Kabupaten Sumenep", "Madura"}
    # Newest first.
    times = [e.published_parsed for e in atom.entries]
    assert times == sorted(times, reverse=True)
    rss_feed = feedparser.parse((out / "feed.xml").read_bytes())
    item = next(e for e in rss_feed.entries if "beasiswa-santri" in e.link)
    assert "Juga diberitakan oleh" in item.description
    assert "Kabar Madura &amp; Co" in item.description or "Kabar Madura & Co" in item.description
    doc = json.loads((out / "feed.json").read_text("utf-8"))
    assert len(doc["items"]) == 4


def test_region_and_member_feeds(published: Path) -> None:
    out = _out(published)
    sumenep = feedparser.parse((out / "regions/kabupaten-sumenep.xml").read_bytes())
    titles = {e.title for e in sumenep.entries}
    assert "Pemkab Sumenep buka beasiswa untuk 750 santri" in titles
    assert "Nelayan Kalianget keluhkan harga solar" in titles
    assert "Pemkot Malang tambah 12 bus sekolah gratis" not in titles
    kota_malang = feedparser.parse((out / "regions/kota-malang.xml").read_bytes())
    assert [e.title for e in kota_malang.entries] == ["Pemkot Malang tambah 12 bus sekolah gratis"]
    # A member's own feed is not clustered: its copy of the release is there under its title.
    member = feedparser.parse((out / "members/kabarmadura.xml").read_bytes())
    assert {e.title for e in member.entries} == {"Beasiswa santri berprestasi Sumenep dibuka",
                                                 "Nelayan Kalianget keluhkan harga solar"}
    sitemap = (out / "sitemaps/news-malangpost.xml").read_text("utf-8")
    assert "https://malangpost.example/beasiswa-santri/" in sitemap
    assert "https://suarajatim.example/" not in sitemap
    index = (out / "sitemap.xml").read_text("utf-8")
    for mid in ("suarajatim", "kabarmadura", "malangpost"):
        assert f"{BASE}sitemaps/news-{mid}.xml" in index


def test_max_items_limits_every_feed(static_site: StaticSite, workdir: Path, cli: Any) -> None:
    config = make_config(workdir, _feeds(static_site), publish={"max_items": 2})
    assert cli("--config", config, "run", "--once").code == 0
    out = _out(config)
    assert len(feedparser.parse((out / "feed.xml").read_bytes()).entries) == 2
    assert len(json.loads((out / "feed.json").read_text("utf-8"))["items"]) == 2
    # The newest two: the Malang bus story (2 h ago) and the Surabaya one (3 h ago).
    titles = [e.title for e in feedparser.parse((out / "atom.xml").read_bytes()).entries]
    assert titles == ["Pemkot Malang tambah 12 bus sekolah gratis",
                      "Wali Kota Surabaya resmikan taman baca di Kecamatan Rungkut"]


def test_unchanged_files_are_not_rewritten(published: Path, cli: Any) -> None:
    out = _out(published)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    result = cli("--config", published, "publish", "--json")
    assert result.code == 0, result.err
    assert result.json()["written"] == 0
    assert result.json()["full"] is True
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    assert after == before
    # A cycle that changes nothing publishes nothing.
    run = cli("--config", published, "run", "--once", "--json")
    assert run.code == 0 and run.json()["new_items"] == 0
    assert run.json()["published"] is None


def test_incremental_publish_writes_what_a_full_one_would(
        static_site: StaticSite, workdir: Path, cli: Any) -> None:
    config = make_config(workdir, _feeds(static_site))
    assert cli("--config", config, "run", "--once").code == 0
    # New items for two members: one joins no cluster, one is a fourth copy... of nothing yet.
    make_config(workdir, _feeds(static_site, extra={
        "kabarmadura": [("Pemkab Sumenep perbaiki jalan di Kecamatan Gapura",
                         "SUMENEP, KabarMadura - Pemerintah Kabupaten Sumenep memperbaiki jalan "
                         "sepanjang 4 kilometer di Kecamatan Gapura.", 1)],
        "malangpost": [("Kota Malang siapkan 40 titik parkir resmi",
                        "MALANG, MalangPost - Pemerintah Kota Malang menyiapkan 40 titik parkir "
                        "resmi di kawasan Kayutangan.", 0.5)]}))
    _touch_later(static_site)
    run = cli("--config", config, "run", "--once", "--json")
    assert run.code == 0 and run.json()["new_items"] == 2
    assert run.json()["published"]["full"] is False
    incremental = snapshot(_out(config))
    full = cli("--config", config, "publish", "--json")
    assert full.code == 0
    assert full.json()["files"] == [], "the incremental publish missed these"
    assert snapshot(_out(config)) == incremental
    kota_malang = feedparser.parse((_out(config) / "regions/kota-malang.xml").read_bytes())
    assert kota_malang.entries[0].title == "Kota Malang siapkan 40 titik parkir resmi"


def test_a_publish_with_nothing_new_renders_only_the_front_files(
        static_site: StaticSite, workdir: Path, cli: Any, database_url: str) -> None:
    """A publish that comes only because sitemaps age (the scheduler's hourly one, or a
    worker's first) re-renders no member or region when no change was committed since the last
    one: on PostgreSQL it used to redo everything changed in the two minutes before it."""
    config = make_config(workdir, _feeds(static_site), database=database_url)
    first = cli("--config", config, "run", "--once", "--json")
    assert first.code == 0, first.err
    assert first.json()["published"]["rendered"] > 20
    loaded = load_config(config)
    engine = make_engine(loaded.database_url)
    try:
        again = publish(engine, loaded, datetime.now(UTC), owner="test")
        assert (again.full, again.rendered, again.written) == (False, 6, [])
    finally:
        engine.dispose()
    # A change committed after it is published as before.
    make_config(workdir, _feeds(static_site, extra={
        "malangpost": [("Kota Malang siapkan 40 titik parkir resmi",
                        "MALANG, MalangPost - Pemerintah Kota Malang menyiapkan 40 titik parkir "
                        "resmi di kawasan Kayutangan.", 0.5)]}), database=database_url)
    _touch_later(static_site)
    run = cli("--config", config, "run", "--once", "--json")
    assert run.code == 0 and run.json()["new_items"] == 1
    assert run.json()["published"]["full"] is False
    kota_malang = feedparser.parse((_out(config) / "regions/kota-malang.xml").read_bytes())
    assert kota_malang.entries[0].title == "Kota Malang siapkan 40 titik parkir resmi"


def test_removed_member_files_are_deleted(static_site: StaticSite, workdir: Path,
                                          cli: Any) -> None:
    members = _feeds(static_site)
    config = make_config(workdir, members)
    assert cli("--config", config, "run", "--once").code == 0
    assert (_out(config) / "members/malangpost.xml").exists()
    make_config(workdir, [m for m in members if m["id"] != "malangpost"])
    result = cli("--config", config, "publish", "--json")
    assert result.code == 0
    assert not (_out(config) / "members/malangpost.xml").exists()
    assert not (_out(config) / "sitemaps/news-malangpost.xml").exists()
    assert "malangpost" not in (_out(config) / "sitemap.xml").read_text("utf-8")
    assert "malangpost.example" not in (_out(config) / "feed.xml").read_text("utf-8")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_output_is_a_clear_error_and_keeps_the_old_files(
        published: Path, cli: Any, static_site: StaticSite) -> None:
    out = _out(published)
    before = snapshot(out)
    make_config(published.parent, _feeds(static_site, extra={
        "suarajatim": [("Banjir rob di Kenjeran", "SURABAYA, SuaraJatim - Banjir rob melanda "
                        "kawasan Kenjeran, Kota Surabaya.", 0.2)]}))
    _touch_later(static_site)
    for p in [out, *out.rglob("*")]:
        if p.is_dir():
            p.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = cli("--config", published, "run", "--once")
    finally:
        for p in [out, *out.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
    assert result.code == 1
    assert "error: publish: cannot write" in result.err
    assert snapshot(out) == before
    # The items were stored all the same, and the next publish catches up.
    again = cli("--config", published, "publish", "--json")
    assert again.code == 0 and again.json()["written"] > 0


def test_read_only_output_as_root_uses_a_file_in_the_way(published: Path, cli: Any) -> None:
    """Where permissions cannot stop root, a file where a folder must go fails the same way."""
    out = _out(published)
    before = (out / "feed.xml").read_bytes()
    for sub in ("members",):
        for p in (out / sub).iterdir():
            p.unlink()
        (out / sub).rmdir()
        (out / sub).write_text("not a folder")
    result = cli("--config", published, "publish")
    assert result.code == 1
    assert "error: publish: cannot write" in result.err
    assert (out / "feed.xml").read_bytes() == before


def test_a_held_publish_lease_skips_publishing(published: Path, cli: Any) -> None:
    db = published.parent / "var" / "aggregator.db"
    until = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO locks (name, owner, until) VALUES ('publish', 'other', ?)",
                     (until,))
    result = cli("--config", published, "publish")
    assert result.code == 1
    assert "another process is publishing" in result.out


class _Hub(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Hub.received.append(parse_qs(self.rfile.read(length).decode()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_changed_feeds_are_announced_to_the_websub_hub(static_site: StaticSite, workdir: Path,
                                                       cli: Any) -> None:
    _Hub.received = []
    hub = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        hub_url = f"http://127.0.0.1:{hub.server_address[1]}/hub"
        config = make_config(workdir, _feeds(static_site), publish={"websub_hub": hub_url})
        result = cli("--config", config, "run", "--once", "--json")
        assert result.code == 0
        announced = {u for r in _Hub.received for u in r["hub.url"]}
        assert all(r["hub.mode"] == ["publish"] for r in _Hub.received)
        assert {f"{BASE}feed.xml", f"{BASE}atom.xml", f"{BASE}feed.json",
                f"{BASE}regions/kota-malang.xml", f"{BASE}members/malangpost.xml"} <= announced
        assert not any("sitemap" in u or u.endswith(".html") for u in announced)
        assert result.json()["published"]["announced"] == len(announced)
        feed = (_out(config) / "atom.xml").read_text("utf-8")
        assert hub_url in feed
        _Hub.received = []
        assert cli("--config", config, "publish").code == 0
        assert _Hub.received == [], "nothing changed, nothing to announce"
    finally:
        hub.shutdown()
        hub.server_close()


def test_sitemap_lines(published: Path, cli: Any) -> None:
    result = cli("--config", published, "sitemap-lines")
    assert result.code == 0
    assert result.out.splitlines() == [
        f"Sitemap: {BASE}sitemaps/news-{mid}.xml"
        for mid in ("suarajatim", "kabarmadura", "malangpost")]


def test_serve_command_serves_the_output(published: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(published), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving "), line + (proc.stderr.read() if proc.stderr else "")
        url = line.rsplit(" on ", 1)[1].strip()
        import httpx

        page = httpx.get(url, timeout=10)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "Pemkab Sumenep buka beasiswa" in page.text
        feed = httpx.get(url.rstrip("/") + "/feed.xml", timeout=10)
        assert feed.headers["content-type"].startswith("application/rss+xml")
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_without_output_is_a_clear_error(workdir: Path, cli: Any,
                                               static_site: StaticSite) -> None:
    config = make_config(workdir, _feeds(static_site))
    result = cli("--config", config, "serve", "--port", "0")
    assert result.code == 1
    assert "does not exist" in result.err and "output" in result.err


def test_demo_serves_a_published_river_of_news(tmp_path: Path) -> None:
    import signal

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "demo", "--port", "0", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("river of news on ")):
            line = proc.stdout.readline()
            assert line, "".join(lines) + (proc.stderr.read() if proc.stderr else "")
            lines.append(line)
        assert "6 ok" in lines[0] and "45 new items" in lines[0]
        url = lines[-1].split(" on ", 1)[1].split()[0]
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200
        # Six stories were syndicated by several sample members.
        assert page.text.count('class="copies"') == 6
        feed = feedparser.parse(httpx.get(url + "feed.xml", timeout=10).content)
        assert feed.feed.link.startswith(url)
        assert len(feed.entries) == 45 - 14  # 20 syndicated copies make 6 stories
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
