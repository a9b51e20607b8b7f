"""Hand-made publishing data for the renderer tests: a site, members, articles and stories.

Includes what must be escaped or dropped (markup and script in titles and content, an ampersand
in a member name, a non-ASCII title) so that every renderer's test meets it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.publish.model import Article, FeedInfo, Place, Site, Source, Story

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

KAB_MALANG = Place("35.07", "Kabupaten Malang", "kabupaten-malang", "kabupaten")
KOTA_MALANG = Place("35.73", "Kota Malang", "kota-malang", "kota")
SURABAYA = Place("35.78", "Kota Surabaya", "kota-surabaya", "kota")
SUMENEP = Place("35.29", "Kabupaten Sumenep", "kabupaten-sumenep", "kabupaten")
MADURA = Place("madura", "Madura", "madura", "grouping")
JATIM = Place("35", "Jawa Timur", "jawa-timur", "province")
JATENG = Place("33", "Jawa Tengah", "jawa-tengah", "other_province")


def site(hub: str | None = None, base_url: str = "https://sindikasi.example.id/") -> Site:
    return Site(name="Sindikasi Jatim", base_url=base_url, language="id",
                timezone="Asia/Jakarta", contact_url=None, websub_hub=hub)


def source(member_id: str, name: str | None = None, language: str = "id") -> Source:
    return Source(id=member_id, name=name or member_id.title(),
                  site=f"https://{member_id}.example.id/",
                  feed_url=f"https://{member_id}.example.id/feed/", language=language,
                  publication=name or member_id.title(), region="Kota Surabaya")


SOURCES = (source("suarajatim", "Suara Jatim"), source("maduranews", "Madura & Co News"),
           source("malangpost", "Malang Post Daring"), source("kabarkediri", "Kabar Kediri"))


def article(item_id: int, src: Source, title: str, hours_ago: float,
            places: tuple[Place, ...] = (), *, slug: str | None = None,
            content_html: str | None = None, summary: str | None = None) -> Article:
    published = NOW - timedelta(hours=hours_ago)
    return Article(
        id=item_id, source=src,
        url=f"{src.site}{published:%Y/%m/%d}/{slug or f'berita-{item_id}'}/",
        title=title,
        summary=summary if summary is not None else f"Ringkasan berita {item_id}: {title}.",
        content_html=content_html if content_html is not None else f"<p>Isi berita {item_id}.</p>",
        author=None, published_at=published, updated_at=None, places=places)


def stories() -> list[Story]:
    """Three stories, newest first: one syndicated by three members, two single ones."""
    s, m, p, k = SOURCES
    lead = article(1, s, "Bupati Sumenep resmikan Pasar Anom Baru", 5, (SUMENEP, MADURA),
                   slug="bupati-sumenep-resmikan-pasar")
    copy1 = article(2, m, "Pasar Anom Baru Sumenep diresmikan Bupati", 4, (SUMENEP, MADURA))
    copy2 = article(3, k, "Bupati resmikan pasar di Sumenep", 3, (SUMENEP, MADURA))
    hostile = article(
        4, p, "Wali Kota Malang <b>buka</b> festival & pameran \"Kampung Biru\"", 2,
        (KOTA_MALANG,),
        content_html='<p onclick="alert(1)">Isi <script>alert(1)</script>'
                     '<a href="javascript:alert(1)">tautan</a></p>',
        summary="Festival <script>alert('x')</script> di Kota Malang & sekitarnya.")
    pemprov = article(5, s, "Gubernur Jatim tinjau banjir di Jawa Tengah perbatasan", 1,
                      (JATIM, JATENG))
    return [
        Story(id=50, lead=pemprov, copies=(), places=pemprov.places,
              published_at=pemprov.published_at, updated_at=pemprov.published_at),
        Story(id=40, lead=hostile, copies=(), places=hostile.places,
              published_at=hostile.published_at, updated_at=hostile.published_at),
        Story(id=10, lead=lead, copies=(copy1, copy2), places=(SUMENEP, MADURA),
              published_at=lead.published_at, updated_at=copy2.published_at),
    ]


def articles_of(member_id: str) -> list[Article]:
    """Every article of one member in ``stories()``, newest first."""
    found = {a.id: a for st in stories() for a in (st.lead, *st.copies)
             if a.source.id == member_id}
    return sorted(found.values(), key=lambda a: a.published_at, reverse=True)


def merged_info() -> FeedInfo:
    return FeedInfo(path="feed.xml", title="Sindikasi Jatim",
                    description="Berita gabungan anggota", home_path="index.html", language="id")
