"""`aggregator check-config` and the config loader, through the command line.

A wrong feeds.yaml is rejected before anything runs: exit status 2, one ``error:`` line per problem
naming the file, the line and the key, and nothing written to disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import snapshot

from aggregator.config import CONFIG_ENV, load_config

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
ROOT = Path(__file__).resolve().parent.parent




def place(name: str, directory: Path, as_name: str | None = None) -> Path:
    target = directory / (as_name or name)
    shutil.copyfile(FIXTURES / name, target)
    return target




def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line of the file containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if needle in line]
    assert len(hits) >= nth, f"{needle!r} occurs {len(hits)} times in {path.name}"
    if nth == 1:
        assert len(hits) == 1, f"{needle!r} is not unique in {path.name}: lines {hits}"
    return hits[nth - 1]


def error_lines(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("error: ") for line in lines), err
    return lines


# (fixture, [(needle locating the line, nth occurrence, key, part of the message)])
Expected = list[tuple[str, int, str, str]]
BAD: list[tuple[str, Expected]] = [
    ("unknown_key_top.yaml", [("output_directory:", 1, "output_directory", "unknown key")]),
    ("unknown_key_source.yaml", [("source:", 1, "source", "unknown key")]),
    ("unknown_key_nested.yaml", [
        ("alow_private_networks:", 1, "fetch.alow_private_networks", "unknown key"),
        # members[0] has no `feeds` (it says `feed`): reported at the start of the member
        ("- id: kabarmadura", 1, "members[0].feeds", "required key is missing"),
        ("feed: https://", 1, "members[0].feed", "unknown key"),
    ]),
    ("duplicate_member_id.yaml", [
        ("- id: kabarmadura", 2, "members[1].id",
         "duplicate member id 'kabarmadura' (first at members[0])"),
    ]),
    ("duplicate_feed.yaml", [
        ("- https://kabarmadura.example/feed/", 1, "members[1].feeds[1]",
         "feed https://kabarmadura.example/feed/ is already listed for member 'kabarmadura'"),
    ]),
    ("bad_url.yaml", [
        ("base_url: sindikasi.example.id", 1, "association.base_url",
         "not an http(s) URL: 'sindikasi.example.id'"),
        ("site: https:///kabarmadura", 1, "members[0].site",  # no host
         "not an http(s) URL: 'https:///kabarmadura'"),
        ("- ftp://", 1, "members[0].feeds[1]", "not an http(s) URL: 'ftp://"),
    ]),
    ("missing_required.yaml", [
        # a missing key is reported at the first line of the mapping that should hold it
        ("base_url:", 1, "association.name", "required key is missing"),
        ("- id: maduranews", 1, "members[1].site", "required key is missing"),
    ]),
    ("yaml_syntax.yaml", [("     site:", 1, "",  # no key: the line and PyYAML's complaint
                           "YAML syntax error: mapping values are not allowed here")]),
    ("duplicate_yaml_key.yaml", [("name: Kabar Madura Baru", 1, "members[0].name",
                                  "duplicate key")]),
    ("wrong_type.yaml", [('concurrency: "many"', 1, "fetch.concurrency", "valid integer")]),
    ("bad_timezone.yaml", [("timezone: Asia/Surabaya", 1, "association.timezone",
                            "unknown time zone 'Asia/Surabaya'")]),
    ("three_problems.yaml", [
        ("max_redirect:", 1, "fetch.max_redirect", "unknown key"),
        ("- id: kabarmadura", 2, "members[1].id", "duplicate member id 'kabarmadura'"),
        ("http//maduranews", 1, "members[1].feeds[0]", "not an http(s) URL"),
    ]),
]


@pytest.mark.parametrize("command", [["check-config"], ["run", "--once", "--no-progress"]],
                         ids=["check-config", "run-once"])
@pytest.mark.parametrize(("fixture", "expected"), BAD,
                         ids=[b[0].removesuffix(".yaml") for b in BAD])
def test_wrong_config_is_rejected(fixture: str, expected: Expected, command: list[str],
                                  workdir: Path, cli: Any) -> None:
    path = place(fixture, workdir)
    before = snapshot(workdir)

    result = cli("--config", path, *command)

    assert result.code == 2, result
    assert result.out == ""
    lines = error_lines(result.err)
    assert len(lines) == len(expected), result.err
    for line, (needle, nth, key, message) in zip(lines, expected, strict=True):
        prefix = f"error: {path}:{line_of(path, needle, nth)}: " + (f"{key}: " if key else "")
        assert line.startswith(prefix), f"{line!r} does not start with {prefix!r}"
        assert message in line.removeprefix(prefix), line
    assert snapshot(workdir) == before  # no var/, no database, no output/


@pytest.mark.parametrize("fixture", ["empty.yaml", "comments_only.yaml"])
def test_empty_file_is_rejected(fixture: str, workdir: Path, cli: Any) -> None:
    path = place(fixture, workdir)
    result = cli("--config", path, "check-config")
    assert result.code == 2
    assert error_lines(result.err) == [f"error: {path}:1: the file is empty"]
    assert set(snapshot(workdir)) == {fixture}


def test_missing_file_is_rejected(workdir: Path, cli: Any) -> None:
    missing = workdir / "nope.yaml"
    for command in (["check-config"], ["run", "--once", "--no-progress"]):
        result = cli("--config", missing, *command)
        assert result.code == 2
        assert error_lines(result.err) == [f"error: {missing}: file not found"]
    assert snapshot(workdir) == {}


def test_missing_default_file_is_rejected(workdir: Path, cli: Any) -> None:
    result = cli("check-config")
    assert result.code == 2
    assert error_lines(result.err) == ["error: feeds.yaml: file not found"]
    assert snapshot(workdir) == {}


# ------------------------------------------------------------------------- choosing the file
def test_valid_config_with_option(workdir: Path, cli: Any) -> None:
    path = place("valid.yaml", workdir)
    before = snapshot(workdir)
    result = cli("--config", path, "check-config")
    assert result.code == 0, result.err
    assert result.out == f"{path}: ok: 3 members, 4 feeds\n"
    assert result.err == ""
    assert snapshot(workdir) == before  # checking writes nothing either


def test_config_from_environment(tmp_path: Path, workdir: Path, cli: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "conf"
    elsewhere.mkdir()
    path = place("valid.yaml", elsewhere)
    place("three_problems.yaml", workdir, as_name="feeds.yaml")  # the cwd default is not used
    monkeypatch.setenv(CONFIG_ENV, str(path))
    result = cli("check-config")
    assert result.code == 0, result.err
    assert result.out == f"{path}: ok: 3 members, 4 feeds\n"


def test_option_wins_over_environment(tmp_path: Path, workdir: Path, cli: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    good = place("valid.yaml", workdir)
    monkeypatch.setenv(CONFIG_ENV, str(place("three_problems.yaml", workdir)))
    assert cli("check-config").code == 2
    result = cli("--config", good, "check-config")
    assert result.code == 0, result.err
    assert result.out.startswith(f"{good}: ok")


def test_default_is_feeds_yaml_in_cwd(workdir: Path, cli: Any) -> None:
    place("valid.yaml", workdir, as_name="feeds.yaml")
    result = cli("check-config")
    assert result.code == 0, result.err
    assert result.out == "feeds.yaml: ok: 3 members, 4 feeds\n"


# --------------------------------------------------------------------------- loaded values
def test_valid_config_values(workdir: Path) -> None:
    config = load_config(place("valid.yaml", workdir))
    assert config.association.base_url == "https://sindikasi.example.id/"  # slash added
    assert config.association.contact_url == "https://sindikasi.example.id/kontak/"
    assert config.fetch.concurrency == 8 and config.fetch.per_host == 2
    assert config.fetch.timeout.connect == 5 and config.fetch.timeout.pool == 30  # default kept
    assert config.schedule.min_interval == 600
    assert [m.id for m in config.members] == ["kabarmadura", "kabarsurabaya", "jatimnews"]
    assert config.members[1].feeds == ["https://kabarsurabaya.example/feed/",
                                       "https://kabarsurabaya.example/category/ekonomi/feed/"]
    assert [config.member_language(m) for m in config.members] == ["id", "id", "jv"]


def test_minimal_config_defaults(workdir: Path, cli: Any) -> None:
    path = place("minimal.yaml", workdir)
    assert cli("--config", path, "check-config").code == 0
    config = load_config(path)
    assert config.association.language == "id"
    assert config.association.timezone == "Asia/Jakarta"
    assert config.association.contact_url is None
    assert config.storage.url == "sqlite:///var/aggregator.db"
    assert config.output_dir == "output"
    assert config.fetch.allow_private_networks is False
    member = config.members[0]
    assert member.region is None and member.language is None
    assert config.member_language(member) == "id"
    # the defaults, too, are relative to the config file's folder
    assert config.database_url == f"sqlite:///{workdir.resolve() / 'var' / 'aggregator.db'}"
    assert config.output_path == workdir.resolve() / "output"


# ------------------------------------------------------------------------- relative paths
@pytest.mark.parametrize(("storage", "expected"), [
    ("sqlite:///data/news.db", "sqlite:///{dir}/data/news.db"),
    ("sqlite+pysqlite:///data/news.db", "sqlite+pysqlite:///{dir}/data/news.db"),
    ("sqlite:////srv/sindikasi/news.db", "sqlite:////srv/sindikasi/news.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://sindikasi@db.example/news", "postgresql+psycopg://sindikasi@db.example/news"),
])
def test_relative_paths_follow_the_config_file(storage: str, expected: str, tmp_path: Path,
                                               workdir: Path) -> None:
    folder = tmp_path / "conf" / "jatim"
    folder.mkdir(parents=True)
    text = (FIXTURES / "relative_paths.yaml").read_text(encoding="utf-8")
    (folder / "feeds.yaml").write_text(text.replace("sqlite:///data/news.db", f'"{storage}"'),
                                       encoding="utf-8")
    # a relative config path, from a cwd that is not the config's folder
    config = load_config(os.path.relpath(folder / "feeds.yaml", workdir))
    assert config.database_url == expected.format(dir=folder.resolve())
    assert config.output_path == folder.resolve() / "public" / "html"


def test_absolute_output_dir_is_kept(tmp_path: Path, workdir: Path) -> None:
    text = (FIXTURES / "relative_paths.yaml").read_text(encoding="utf-8")
    path = workdir / "feeds.yaml"
    path.write_text(text.replace("output_dir: public/html", f"output_dir: {tmp_path / 'www'}"),
                    encoding="utf-8")
    assert load_config(path).output_path == tmp_path / "www"


def test_database_is_created_beside_the_config(tmp_path: Path, workdir: Path, cli: Any) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = place("relative_paths.yaml", folder, as_name="feeds.yaml")
    result = cli("--config", os.path.relpath(path, workdir), "feeds", "--json")
    assert result.code == 0, result.err
    assert (folder / "data" / "news.db").is_file()
    assert snapshot(workdir) == {}  # nothing in the cwd


# --------------------------------------------------------------------------- shipped config
def test_shipped_feeds_yaml(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = ROOT / "feeds.yaml"
    if not shipped.is_file():
        pytest.skip(f"{shipped} does not exist yet")
    monkeypatch.chdir(ROOT)
    result = cli("check-config")  # the default: feeds.yaml in the cwd
    assert result.code == 0, result.err
    config = load_config(shipped)
    assert len(config.members) >= 10
    feeds = [url for m in config.members for url in m.feeds]
    assert feeds and all(urlsplit(url).scheme == "https" for url in feeds), [
        url for url in feeds if urlsplit(url).scheme != "https"]
    assert config.fetch.allow_private_networks is False
