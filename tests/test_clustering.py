"""Story clustering through the public surface: poll, then read clusters and `explain`."""

from __future__ import annotations

import itertools
import sqlite3
import struct
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import numpy as np
from conftest import Farm, StaticSite, farm_members, make_config, rss
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, insert, text

from aggregator.clustering import _db_time
from aggregator.db import UTCDateTime, make_engine
from aggregator.similarity import NUM_PERM

PRESS_RELEASE = [
    "Kepolisian Daerah Jawa Timur meluncurkan layanan pengaduan daring bernama Lapor Cepat "
    "yang bisa diakses warga selama 24 jam melalui aplikasi dan nomor WhatsApp resmi.",
    "Kapolda Jatim Irjen Pol Bambang Sutrisno mengatakan layanan itu disiapkan agar laporan "
    "masyarakat soal kejahatan jalanan, penipuan daring, dan kecelakaan bisa ditangani lebih "
    "cepat oleh polres terdekat.",
    "Menurut dia, setiap laporan akan diteruskan ke 39 polres dan polresta di seluruh Jawa Timur "
    "dalam waktu kurang dari 15 menit setelah diterima operator di Surabaya.",
    "Selama uji coba tiga bulan, Lapor Cepat menerima 4.812 laporan dan 3.950 di antaranya sudah "
    "ditindaklanjuti petugas di lapangan, ujar Bambang.",
    "Polda Jatim juga menyiapkan 120 operator yang bekerja bergantian dalam tiga sif untuk "
    "memastikan setiap pengaduan dijawab manusia, bukan mesin.",
]
DRUG_BUST = (
    "Satresnarkoba Polres {place} menangkap {name} ({age}), warga Kecamatan {kec}, karena "
    "kedapatan menyimpan sabu seberat {grams} gram. Penangkapan dilakukan pada Senin malam "
    "setelah polisi menerima informasi dari masyarakat. Kasatresnarkoba Polres {place} AKP "
    "{officer} mengatakan tersangka dijerat Pasal 114 dan Pasal 112 Undang-Undang Narkotika "
    "dengan ancaman hukuman paling lama 20 tahun penjara. Polisi masih memburu pemasok sabu "
    "tersebut dan mengimbau warga melapor bila mengetahui peredaran narkoba di lingkungannya."
)


def _html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def _date(hours_ago: float) -> str:
    return format_datetime(datetime.now(UTC) - timedelta(hours=hours_ago))


def _publish(site: StaticSite) -> list[dict[str, Any]]:
    """Three outlets republish one press release; two others carry template drug-bust reports."""
    copies = [
        ("beritasatu", "Polda Jatim Luncurkan Layanan Lapor Cepat 24 Jam",
         "SURABAYA, BeritaSatu.id - " + PRESS_RELEASE[0], PRESS_RELEASE[1:], 30),
        ("kabartimur", "Lapor Cepat, Layanan Pengaduan 24 Jam dari Polda Jatim",
         "Surabaya (kabartimur.com) – " + PRESS_RELEASE[0],
         [PRESS_RELEASE[2], PRESS_RELEASE[1], "Baca juga: Harga Cabai Naik Lagi",
          *PRESS_RELEASE[3:]], 20),
        ("suaradesa", "Warga Jatim Kini Bisa Lapor Polisi Lewat Lapor Cepat",
         "SuaraDesa.com, Surabaya - " + PRESS_RELEASE[0],
         [PRESS_RELEASE[1], PRESS_RELEASE[2].replace("Menurut dia", "Ia menyebut"),
          PRESS_RELEASE[3]], 10),
    ]
    members = []
    for mid, title, lead, rest, hours in copies:
        url = site.write(f"{mid}.xml", rss(mid, [{
            "title": title, "link": f"https://{mid}.example/lapor-cepat/", "guid": f"{mid}-1",
            "date": _date(hours), "html": _html([lead, *rest])}]))
        members.append({"id": mid, "name": mid.title(), "site": f"https://{mid}.example/",
                        "feeds": [url]})
    traps = [("Sampang", "Ahmad Fauzi", 34, "Torjun", "3,5", "Budi Santoso"),
             ("Bangkalan", "Moh Rasyid", 29, "Kamal", "12,8", "Dedi Kurniawan")]
    for n, (place, name, age, kec, grams, officer) in enumerate(traps):
        mid = f"radar{place.lower()}"
        text = DRUG_BUST.format(place=place, name=name, age=age, kec=kec, grams=grams,
                                officer=officer)
        url = site.write(f"{mid}.xml", rss(mid, [{
            "title": f"Polres {place} Tangkap Pengedar Sabu {grams} Gram",
            "link": f"https://{mid}.example/sabu/", "guid": f"{mid}-1",
            "date": _date(5 + n), "html": _html([f"{place.upper()}, Radar.id - {text}"])}]))
        members.append({"id": mid, "name": f"Radar {place}", "site": f"https://{mid}.example/",
                        "feeds": [url], "region": f"Kabupaten {place}"})
    return members


def test_copies_form_one_cluster_and_template_traps_stay_apart(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    config = make_config(tmp_path, _publish(static_site))
    assert "5 ok" in cli("--config", config, "run", "--once").out
    db = sqlite3.connect(tmp_path / "var" / "aggregator.db")
    rows = db.execute("SELECT member_id, cluster_id FROM items").fetchall()
    cluster_of = dict(rows)
    assert cluster_of["beritasatu"] == cluster_of["kabartimur"] == cluster_of["suaradesa"]
    assert cluster_of["radarsampang"] != cluster_of["radarbangkalan"]
    assert len({cluster_of["radarsampang"], cluster_of["radarbangkalan"],
                cluster_of["beritasatu"]}) == 3
    rep, size = db.execute(
        "SELECT i.member_id, c.size FROM clusters c JOIN items i ON i.id = c.representative_id "
        "WHERE c.id = ?", (cluster_of["suaradesa"],)).fetchone()
    assert (rep, size) == ("beritasatu", 3)  # the earliest copy is the representative

    explained = cli("--config", config, "explain", "https://kabartimur.example/lapor-cepat/")
    assert explained.code == 0, explained.err
    assert "Jawa Timur (35)" in explained.out
    assert "cluster" in explained.out and "3 copies" in explained.out
    assert "near-duplicate of item" in explained.out
    as_json = cli("--config", config, "explain", "--json",
                  "https://radarsampang.example/sabu/?utm_source=x").json()
    assert [r["code"] for r in as_json["regions"]][:1] == ["35.27"]
    assert any("Polres Sampang" in e for e in as_json["regions"][0]["evidence"])
    assert as_json["cluster"]["size"] == 1
    missing = cli("--config", config, "explain", "https://nowhere.example/x/")
    assert missing.code == 2 and "no stored item" in missing.err


def _poll_reworded_copy_in_new_process(tmp_path: Path, static_site: StaticSite) -> None:
    """A new member "ulang" republishes beritasatu's release, reworded so that only the LSH
    buckets can find the original, and a new process polls it: its in-memory bucket index
    starts empty and must come from the database."""
    copy = static_site.write(
        "ulang.xml", (static_site.root / "beritasatu.xml").read_text()
        .replace("beritasatu-1", "ulang-1")
        .replace("https://beritasatu.example/lapor-cepat/", "https://ulang.example/lapor-cepat/")
        .replace("Menurut dia", "Ia menegaskan").replace("Luncurkan", "Perkenalkan"))
    extra = make_config(tmp_path, [{"id": "ulang", "name": "Ulang", "site": "https://u.example/",
                                    "feeds": [copy]}], name="extra.yaml")
    subprocess.run([sys.executable, "-m", "aggregator", "--config", str(extra), "run", "--once"],
                   check=True, capture_output=True)


def test_a_later_copy_joins_across_restarts_but_not_outside_the_window(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    members = _publish(static_site)
    first = make_config(tmp_path, members[:1])
    cli("--config", first, "run", "--once")  # one process polls the original
    _poll_reworded_copy_in_new_process(tmp_path, static_site)
    db = sqlite3.connect(tmp_path / "var" / "aggregator.db")
    cluster_of = dict(db.execute("SELECT member_id, cluster_id FROM items").fetchall())
    assert cluster_of["ulang"] == cluster_of["beritasatu"]
    reason = db.execute("SELECT cluster_reason FROM items WHERE member_id = 'ulang'").fetchone()
    assert reason[0].startswith("near-duplicate of item")

    # With a 1-hour window, copies published 10 and 20 hours later start clusters of their own.
    config = make_config(tmp_path, members[:3])
    config.write_text(config.read_text().replace("members:", "cluster:\n  window_hours: 1\n"
                                                              "members:"))
    cli("--config", config, "run", "--once")
    cluster_of = dict(db.execute("SELECT member_id, cluster_id FROM items").fetchall())
    assert len({cluster_of["beritasatu"], cluster_of["kabartimur"],
                cluster_of["suaradesa"]}) == 3


def test_feed_farm_clusters_match_the_truth(tmp_path: Path, farm: Farm, cli: Any) -> None:
    config = make_config(tmp_path, farm_members(farm))
    assert cli("--config", config, "run", "--once").code == 0
    db = sqlite3.connect(tmp_path / "var" / "aggregator.db")
    got = {(feed.split("/feeds/")[1].split("/")[0], url): cluster for feed, url, cluster in
           db.execute("SELECT f.config_url, i.url, i.cluster_id FROM items i "
                      "JOIN feeds f ON f.id = i.feed_id")}
    want = {(t["feed"], t["url"]): t["cluster"] for t in farm.truth()}

    def pairs(labels: dict[tuple[str, str], Any]) -> set[tuple[Any, Any]]:
        groups: dict[Any, list[tuple[str, str]]] = defaultdict(list)
        for key, label in labels.items():
            if label is not None:
                groups[label].append(key)
        return {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}

    got_pairs, want_pairs = pairs(got), pairs(want)
    assert want_pairs, "the farm corpus has syndicated copies"
    precision = len(got_pairs & want_pairs) / len(got_pairs)
    recall = len(got_pairs & want_pairs) / len(want_pairs)
    assert precision >= 0.99 and recall >= 0.95, (precision, recall)
    # Every cluster's representative is its earliest copy, and sizes add up.
    bad = db.execute(
        "SELECT c.id FROM clusters c JOIN items r ON r.id = c.representative_id "
        "WHERE r.published_at > (SELECT min(published_at) FROM items WHERE cluster_id = c.id) "
        "OR c.size != (SELECT count(*) FROM items WHERE cluster_id = c.id)").fetchall()
    assert bad == []


def test_buckets_kept_one_row_a_bucket_before_0006_still_match_after_upgrade(
        tmp_path: Path, static_site: StaticSite, cli: Any) -> None:
    """A store written before buckets were packed one row an item (migration 0006) is
    converted in place: the stored item's buckets survive and a new copy still finds it."""
    from alembic import command
    from alembic.config import Config

    members = _publish(static_site)
    cli("--config", make_config(tmp_path, members[:1]), "run", "--once")
    path = tmp_path / "var" / "aggregator.db"
    before = sqlite3.connect(path).execute(
        "SELECT item_id, published_at, seq, bucket_keys FROM lsh_keys").fetchall()
    assert len(before) == 1 and len(before[0][3]) == 25 * 8
    engine = make_engine(f"sqlite:///{path}")
    alembic = Config()
    alembic.set_main_option("script_location",
                            str(Path(__file__).parent.parent / "aggregator" / "migrations"))
    with engine.begin() as conn:
        alembic.attributes["connection"] = conn
        command.downgrade(alembic, "0005")
    engine.dispose()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM lsh_buckets").fetchone() == (25,)
    db.close()

    _poll_reworded_copy_in_new_process(tmp_path, static_site)
    db = sqlite3.connect(path)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'lsh_buckets'").fetchall() == []
    after = db.execute("SELECT item_id, published_at, seq, bucket_keys FROM lsh_keys "
                       "ORDER BY item_id").fetchall()
    assert after[0] == before[0] and len(after) == 2
    cluster_of = dict(db.execute("SELECT member_id, cluster_id FROM items").fetchall())
    assert cluster_of["ulang"] == cluster_of["beritasatu"]


def _toy_signature(seed: int) -> bytes:
    """Signature bytes whose values repeat with period ``seed + 1``: toy signatures that agree
    with each other in a spread of counts."""
    return struct.pack(f"<{NUM_PERM}I", *((j % (seed + 1)) * 0x01000101 for j in range(NUM_PERM)))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.lists(st.integers(0, 30), max_size=6),
                          st.integers(0, 20), st.integers(0, 5)), max_size=40),
       st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5)), min_size=1, max_size=10),
       st.integers(0, 20), st.integers(0, 10), st.integers(0, 10),
       st.sampled_from([0, 1, 40, 64, 128]))
def test_bucket_index_finds_what_a_plain_table_finds(
        batches: list[tuple[int, list[int], int, int]], queries: list[tuple[int, int]],
        prune_at: int, lo_gap: int, hi_gap: int, least: int) -> None:
    """The sorted, merged and pruned runs answer exactly as a list of (key, item, time) rows,
    less the items whose sketches agree with the query's in fewer than ``least`` bytes."""
    from aggregator.clustering import _BucketIndex, sketches_of

    index = _BucketIndex()
    rows: list[tuple[int, int, float, bytes]] = []
    keep_after = float("-inf")
    for item_id, (cut, keys, at, seed) in enumerate(batches):
        if cut < 8:  # now and then the window moves on, before more items come
            index.prune(datetime.fromtimestamp(cut, UTC))
            keep_after = cut
            rows = [r for r in rows if r[2] >= cut]
        packed = struct.pack(f"<{len(keys)}q", *keys)
        index.add([(item_id, float(at), packed, _toy_signature(seed))])
        if at >= keep_after:
            rows += [(k, item_id, float(at), _toy_signature(seed)) for k in keys]
    index.prune(datetime.fromtimestamp(prune_at, UTC))
    lo, hi = float(prune_at - lo_gap), float(prune_at + hi_gap)
    query_sigs = [_toy_signature(seed) for _, seed in queries]
    hits, ids, _ = index.candidates(np.array([k for k, _ in queries], dtype=np.int64),
                                    sketches_of(b"".join(query_sigs)), lo, hi, least)

    def agree(a: bytes, b: bytes) -> int:  # low bytes of little-endian values
        return sum(a[j] == b[j] for j in range(0, len(a), 4))

    got = sorted(zip(hits.tolist(), ids.tolist(), strict=True))
    want = sorted((q, item) for q, (key, _) in enumerate(queries) for k, item, at, sig in rows
                  if k == key and at >= prune_at and lo <= at <= hi
                  and agree(sig, query_sigs[q]) >= least)
    assert got == want


def test_sketches_never_agree_less_than_the_signatures() -> None:
    """The filter loses nothing: equal values have equal sketch bytes, whatever the values."""
    from aggregator.clustering import sketches_of

    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**32, size=(500, NUM_PERM), dtype=np.uint32)
    b = np.where(rng.random((500, NUM_PERM)) < 0.5, a,
                 rng.integers(0, 2**32, size=(500, NUM_PERM), dtype=np.uint32))
    exact = np.count_nonzero(a == b, axis=1)
    upper = np.count_nonzero(sketches_of(a.astype("<u4").tobytes())
                             == sketches_of(b.astype("<u4").tobytes()), axis=1)
    assert (upper >= exact).all() and (upper <= exact + 8).all() and (upper > exact).any()


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)),
                                               timezone(timedelta(hours=-5, minutes=-30))])))
def test_bucket_times_are_written_as_the_store_writes_its_times(value: datetime) -> None:
    """The bucket rows' published_at is bound by hand (``_db_time``); SQLite compares the text,
    so it must be exactly what the items' UTCDateTime column writes."""
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (at DATETIME)"))
            table = Table("t", MetaData(), Column("at", UTCDateTime))
            conn.execute(insert(table).values(at=value))
            stored = conn.exec_driver_sql("SELECT at FROM t").scalar()
            assert _db_time(conn, value) == stored
    finally:
        engine.dispose()
