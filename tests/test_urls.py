"""Canonical article URLs: absolute, tracking-free, AMP-folded, fragment-less, and stable."""

from __future__ import annotations

import pytest

from aggregator.urls import canonical_url, host_of, is_tracking_param

SITE = "https://suarajatim.example.id"
ARTICLE = f"{SITE}/2024/05/14/banjir-rob-surabaya/"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        # Already canonical.
        (ARTICLE, ARTICLE),
        # WordPress "utm_" tails, click ids and fragments.
        (f"{ARTICLE}?utm_source=rss&utm_medium=rss&utm_campaign=banjir-rob", ARTICLE),
        (f"{ARTICLE}?fbclid=IwAR0abc", ARTICLE),
        (f"{ARTICLE}?gclid=Cj0KCQjw&UTM_Term=banjir", ARTICLE),
        (f"{ARTICLE}#respond", ARTICLE),
        (f"{ARTICLE}?utm_source=x#komentar", ARTICLE),
        # Article parameters survive, in their order, around removed tracking ones.
        (f"{SITE}/berita?id=77&utm_medium=wa&page=2", f"{SITE}/berita?id=77&page=2"),
        (f"{SITE}/cari?q=banjir+rob&fbclid=1", f"{SITE}/cari?q=banjir+rob"),
        # AMP variants fold onto the article.
        (f"{ARTICLE}amp/", ARTICLE),
        (f"{ARTICLE}amp", ARTICLE),
        (f"{ARTICLE}AMP/", ARTICLE),
        (f"{ARTICLE}?amp=1", ARTICLE),
        (f"{ARTICLE}?amp", ARTICLE),
        (f"{SITE}/berita/banjir-rob.amp.html", f"{SITE}/berita/banjir-rob.html"),
        (f"{SITE}/berita/banjir-rob-amp.html", f"{SITE}/berita/banjir-rob.html"),
        ("https://amp.suarajatim.example.id/2024/05/14/banjir-rob-surabaya/", ARTICLE),
        # Scheme and host case, default ports, trailing dot of the host.
        ("HTTPS://SuaraJatim.Example.ID/2024/05/14/banjir-rob-surabaya/", ARTICLE),
        ("https://suarajatim.example.id:443/2024/05/14/banjir-rob-surabaya/", ARTICLE),
        ("https://suarajatim.example.id./2024/05/14/banjir-rob-surabaya/", ARTICLE),
        ("http://suarajatim.example.id:80/x", "http://suarajatim.example.id/x"),
        ("http://suarajatim.example.id:8080/x", "http://suarajatim.example.id:8080/x"),
        # An empty path is "/".
        ("https://suarajatim.example.id", f"{SITE}/"),
        # Encoded and raw forms of one path are one URL.
        (f"{SITE}/berita/%62anjir", f"{SITE}/berita/banjir"),
        (f"{SITE}/tag/jawa timur/", f"{SITE}/tag/jawa%20timur/"),
        (f"{SITE}/tag/jawa%20timur/", f"{SITE}/tag/jawa%20timur/"),
        # Surrounding whitespace, as feeds carry it in <link> elements.
        (f"\n\t {ARTICLE} \n", ARTICLE),
        # IPv6 literal hosts keep their brackets.
        ("http://[2001:db8::1]:8080/berita/", "http://[2001:db8::1]:8080/berita/"),
    ],
)
def test_canonical_url(link: str, expected: str) -> None:
    assert canonical_url(link) == expected


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("/2024/05/12/tol-probowangi-dibuka/", SITE, f"{SITE}/2024/05/12/tol-probowangi-dibuka/"),
        ("/2024/05/12/tol/", f"{SITE}/feed/", f"{SITE}/2024/05/12/tol/"),
        ("tol-dibuka/", f"{SITE}/infrastruktur/", f"{SITE}/infrastruktur/tol-dibuka/"),
        ("../ekonomi/cabai", f"{SITE}/berita/terkini/", f"{SITE}/berita/ekonomi/cabai"),
        ("//cdn.example.id/x?utm_source=y", SITE, "https://cdn.example.id/x"),
        # An absolute link ignores the base.
        ("https://lain.example.id/a", SITE, "https://lain.example.id/a"),
    ],
)
def test_relative_links_resolve_against_base(link: str, base: str, expected: str) -> None:
    assert canonical_url(link, base) == expected


@pytest.mark.parametrize(
    "link",
    [
        "",
        "   ",
        "javascript:alert(document.cookie)",
        "mailto:redaksi@suarajatim.example.id",
        "ftp://suarajatim.example.id/arsip.zip",
        "data:text/html,<script>alert(1)</script>",
        "http://",
        "https:///tanpa-host",
        "http://[::1",  # unbalanced IPv6 bracket
        "http://suarajatim.example.id:99999/",  # port out of range
        "/relatif/tanpa-basis",
        "http://./",
    ],
)
def test_unusable_links_give_none(link: str) -> None:
    assert canonical_url(link) is None


def test_relative_link_without_http_base_gives_none() -> None:
    assert canonical_url("/berita/x", "file:///etc/") is None


@pytest.mark.parametrize(
    "link",
    [
        f"{ARTICLE}amp/amp/",
        "https://amp.amp.suarajatim.example.id/berita/",
        f"{SITE}/berita/%61mp",
        f"{SITE}/berita/banjir.amp.amp",
        f"{SITE}/berita/banjir-amp-amp.html",
        f"{SITE}/berita/amp.amp",
        f"{SITE}/tag/jawa%2520timur",
        f"{SITE}/a b/c%2Fd?x=1 2&y=%26",
    ],
)
def test_canonical_url_is_idempotent(link: str) -> None:
    once = canonical_url(link)
    assert once is not None
    assert canonical_url(once) == once


def test_amp_twins_share_one_canonical_form() -> None:
    twins = [
        ARTICLE,
        f"{ARTICLE}amp/",
        f"{ARTICLE}?amp=1",
        f"{ARTICLE}?utm_source=rss&utm_medium=rss",
        f"{ARTICLE}#respond",
        "https://amp.suarajatim.example.id/2024/05/14/banjir-rob-surabaya/amp/?fbclid=x",
    ]
    assert {canonical_url(t) for t in twins} == {ARTICLE}


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("UTM_CAMPAIGN", True),
        ("fbclid", True),
        ("gclid", True),
        ("amp", True),
        ("mc_eid", True),
        ("pk_kwd", True),
        ("id", False),
        ("page", False),
        ("q", False),
        ("p", False),
        ("utm", False),
    ],
)
def test_is_tracking_param(name: str, tracking: bool) -> None:
    assert is_tracking_param(name) is tracking


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://SuaraJatim.example.id/x", "suarajatim.example.id"),
        ("http://127.0.0.1:8080/feed", "127.0.0.1"),
        ("/relatif", ""),
        ("http://[::1", ""),
        ("", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
