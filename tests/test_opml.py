"""`aggregator export-opml` and `aggregator import-opml`, through the command line."""

from __future__ import annotations

import difflib
import shutil
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import snapshot
from lxml import etree

from aggregator.config import load_config

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "opml"
CONFIG_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
NO_REGION = "Tanpa wilayah"




@pytest.fixture
def members(workdir: Path) -> Path:
    """fixtures/opml/members.yaml as ./feeds.yaml: 3 members, 3 feeds, comments."""
    path = workdir / "feeds.yaml"
    shutil.copyfile(FIXTURES / "members.yaml", path)
    return path




def parse(data: bytes) -> Any:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def feeds_by_region(root: Any) -> dict[str, list[tuple[str, str, str]]]:
    """{folder title: [(text, xmlUrl, htmlUrl)]} from an exported OPML tree."""
    body = root.find("body")
    assert body is not None
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for folder in body:
        assert folder.tag == "outline" and folder.get("xmlUrl") is None
        assert folder.get("text") == folder.get("title")
        region = folder.get("text")
        assert region not in groups, f"region {region!r} appears twice"
        groups[region] = []
        for feed in folder:
            assert feed.tag == "outline" and feed.get("type") == "rss"
            assert len(feed) == 0
            assert feed.get("category") == f"/{region}"
            groups[region].append((feed.get("text"), feed.get("xmlUrl"), feed.get("htmlUrl")))
    return groups


def expected_groups(config_path: Path) -> dict[str, list[tuple[str, str, str]]]:
    config = load_config(config_path)
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for m in config.members:
        for url in m.feeds:
            groups.setdefault(m.region or NO_REGION, []).append((m.name, url, m.site))
    return groups


# ------------------------------------------------------------------------------------ export
def test_export_prints_opml_grouped_by_region(workdir: Path, cli: Any) -> None:
    config = workdir / "feeds.yaml"
    shutil.copyfile(CONFIG_FIXTURES / "valid.yaml", config)
    result = cli("--config", config, "export-opml")
    assert result.code == 0, result.err

    root = parse(result.out.encode("utf-8"))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert [child.tag for child in root] == ["head", "body"]
    assert root.findtext("head/title") == "AMSI Jawa Timur: member feeds"
    assert parsedate_to_datetime(root.findtext("head/dateCreated")).tzinfo is not None

    groups = feeds_by_region(root)
    assert list(groups) == sorted(groups)  # folders in a stable order
    assert groups == expected_groups(config)
    assert groups == {
        "Kabupaten Pamekasan": [("Kabar Madura", "https://kabarmadura.example/feed/",
                                 "https://kabarmadura.example/")],
        "Kota Surabaya": [
            ("Kabar Surabaya", "https://kabarsurabaya.example/feed/",
             "https://kabarsurabaya.example/"),
            ("Kabar Surabaya", "https://kabarsurabaya.example/category/ekonomi/feed/",
             "https://kabarsurabaya.example/"),
        ],
        NO_REGION: [("Jatim News", "https://www.jatimnews.example/rss.xml",
                     "https://www.jatimnews.example/")],
    }
    assert snapshot(workdir) == {"feeds.yaml": config.read_bytes()}  # printed, not written


def test_export_to_file(members: Path, workdir: Path, cli: Any) -> None:
    printed = cli("export-opml")
    assert printed.code == 0, printed.err

    result = cli("export-opml", "-o", "public/anggota.opml")
    assert result.code == 0, result.err
    assert result.out == ""
    written = workdir / "public" / "anggota.opml"
    assert set(snapshot(workdir)) == {"feeds.yaml", "public/", "public/anggota.opml"}
    data = written.read_bytes()
    assert data.startswith(b"<?xml")
    root = parse(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert feeds_by_region(root) == feeds_by_region(parse(printed.out.encode("utf-8")))
    assert feeds_by_region(root) == expected_groups(members)


def test_export_with_wrong_config_writes_nothing(workdir: Path, cli: Any) -> None:
    shutil.copyfile(CONFIG_FIXTURES / "three_problems.yaml", workdir / "feeds.yaml")
    before = snapshot(workdir)
    result = cli("export-opml", "-o", "anggota.opml")
    assert result.code == 2
    assert len(result.err.splitlines()) == 3
    assert snapshot(workdir) == before


# ------------------------------------------------------------------------------------ import
IMPORTED = [
    "portalmadura: https://www.portalmadura.example/feed/",
    "portalmadura: https://www.portalmadura.example/category/olahraga/feed/",
    "beritamalang: https://www.beritamalang.example/ekonomi/feed/",
    "suarasemarang: https://suarasemarang.example/feed/",
]


def test_import_adds_new_feeds_and_keeps_comments(members: Path, cli: Any) -> None:
    old = members.read_text(encoding="utf-8")
    old_config = load_config(members)

    result = cli("import-opml", FIXTURES / "import.opml")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"added {line}" for line in IMPORTED]

    new = members.read_text(encoding="utf-8")
    for comment in ("# Anggota AMSI Jawa Timur: one entry per outlet.",
                    "  # Kota Surabaya",
                    "  - id: beritamalang   # the oldest member",
                    "  allow_private_networks: false   # never true outside tests",
                    "# end of members"):
        assert comment in new.splitlines(), comment
    # The file is only added to: every old line is kept as it was, except the one flow list
    # that gained a feed.
    changed = [
        old.splitlines()[i1:i2]
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(
            a=old.splitlines(), b=new.splitlines(), autojunk=False).get_opcodes()
        if tag != "equal" and tag != "insert"
    ]
    assert changed == [["    feeds: [https://www.beritamalang.example/feed/]"]]

    check = cli("check-config")
    assert check.code == 0, check.err
    assert check.out == "feeds.yaml: ok: 5 members, 7 feeds\n"

    config = load_config(members)
    by_id = {m.id: m for m in config.members}
    assert list(by_id) == ["kabarsurabaya", "beritamalang", "jatimnews", "portalmadura",
                           "suarasemarang"]
    # untouched members
    old_by_id = {m.id: m for m in old_config.members}
    assert by_id["kabarsurabaya"] == old_by_id["kabarsurabaya"]  # its feed was a duplicate
    assert by_id["jatimnews"] == old_by_id["jatimnews"]
    # a second feed of an existing member goes to that member
    assert by_id["beritamalang"].feeds == ["https://www.beritamalang.example/feed/",
                                           "https://www.beritamalang.example/ekonomi/feed/"]
    # two feeds of one new site: one member, region from the nearest folder
    madura = by_id["portalmadura"]
    assert madura.name == "Portal Madura"
    assert madura.site == "https://www.portalmadura.example/"
    assert madura.region == "Madura"
    assert madura.feeds == ["https://www.portalmadura.example/feed/",
                            "https://www.portalmadura.example/category/olahraga/feed/"]
    # no htmlUrl: the site is the feed's origin
    semarang = by_id["suarasemarang"]
    assert semarang.site == "https://suarasemarang.example/"
    assert semarang.region == "Jawa Tengah"
    assert semarang.feeds == ["https://suarasemarang.example/feed/"]


def test_import_twice_adds_nothing(members: Path, cli: Any) -> None:
    assert cli("import-opml", FIXTURES / "import.opml").code == 0
    after_first = members.read_bytes()
    again = cli("import-opml", FIXTURES / "import.opml")
    assert again.code == 0, again.err
    assert again.out == "nothing to add: every feed is already in the config\n"
    assert members.read_bytes() == after_first


def test_export_then_import_adds_nothing(members: Path, workdir: Path, cli: Any) -> None:
    assert cli("export-opml", "-o", "anggota.opml").code == 0
    before = members.read_bytes()
    result = cli("import-opml", workdir / "anggota.opml")
    assert result.code == 0, result.err
    assert result.out == "nothing to add: every feed is already in the config\n"
    assert members.read_bytes() == before


def test_import_one_member_per_site(members: Path, cli: Any) -> None:
    """Sites are told apart by host, whatever member id their first label suggests."""
    result = cli("--config", members, "import-opml", FIXTURES / "collide.opml")
    assert result.code == 0, result.err
    assert cli("--config", members, "check-config").code == 0
    by_id = {m.id: m for m in load_config(members).members}
    assert by_id["kabarsurabaya"].feeds == ["https://kabarsurabaya.example/feed/"]
    assert by_id["kabarsurabaya-2"].site == "https://kabarsurabaya.example.net/"
    assert by_id["kabarsurabaya-2"].feeds == ["https://kabarsurabaya.example.net/feed/",
                                              "https://kabarsurabaya.example.net/bola/feed/"]
    assert by_id["radar"].name == "Radar Kediri"
    assert by_id["radar"].feeds == ["https://radar.kediri.example/feed/"]
    assert by_id["radar-2"].name == "Radar Jember"
    assert by_id["radar-2"].feeds == ["https://radar.jember.example/feed/"]
    assert len(by_id) == 3 + 3


def test_import_dry_run_changes_nothing(members: Path, workdir: Path, cli: Any) -> None:
    before = snapshot(workdir)
    result = cli("import-opml", "--dry-run", FIXTURES / "import.opml")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"would add {line}" for line in IMPORTED]
    assert snapshot(workdir) == before


@pytest.mark.parametrize("opml", ["not_xml.opml", "wrong_root.opml", "entity_bomb.opml",
                                  "bad_feed_url.opml"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
def test_broken_opml_is_rejected(opml: str, dry_run: bool, members: Path, workdir: Path,
                                 cli: Any) -> None:
    before = snapshot(workdir)
    source = FIXTURES / opml
    result = cli("import-opml", *(["--dry-run"] if dry_run else []), source)
    assert result.code == 2, result
    assert "add" not in result.out
    lines = result.err.splitlines()
    assert lines and all(line.startswith(f"error: {source}: ") for line in lines), result.err
    assert snapshot(workdir) == before  # config unchanged, no temporary file left behind


def test_broken_opml_messages(members: Path, cli: Any) -> None:
    assert "not well-formed XML" in cli("import-opml", FIXTURES / "not_xml.opml").err
    assert "root element is <rss>, not <opml>" in cli(
        "import-opml", FIXTURES / "wrong_root.opml").err
    assert "entity" in cli("import-opml", FIXTURES / "entity_bomb.opml").err.lower()
    assert "not an http(s) URL: 'feed://legacy.example/rss'" in cli(
        "import-opml", FIXTURES / "bad_feed_url.opml").err


def test_import_into_wrong_config_is_rejected(workdir: Path, cli: Any) -> None:
    config = workdir / "feeds.yaml"
    shutil.copyfile(CONFIG_FIXTURES / "three_problems.yaml", config)
    before = snapshot(workdir)
    result = cli("import-opml", FIXTURES / "import.opml")
    assert result.code == 2
    assert len(result.err.splitlines()) == 3
    assert all(line.startswith("error: feeds.yaml:") for line in result.err.splitlines())
    assert snapshot(workdir) == before
