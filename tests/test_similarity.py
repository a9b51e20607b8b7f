"""similarity: copies of one press release cluster; template stories with other facts do not.

The corpus below is synthetic, written for these tests: one press release and four copies edited
the way member outlets edit (reworded title, own dateline, a sentence added or dropped,
paragraphs reordered, "Baca juga" lines, footers and credits), and the template traps that share
boilerplate but not facts: drug-bust reports of three police districts, market price reports of
different days and markets, weather warnings for two areas, two accident reports, and unrelated
stories of the same regions.  Names of people are invented.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import subprocess
import sys
import time

import pytest
import xxhash
from datasketch import MinHash  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.similarity import (
    BANDS,
    CERTAIN_THRESHOLD,
    EMPTY_SIGNATURE,
    HASH_SEED,
    MATCH_THRESHOLD,
    NUM_PERM,
    ROWS,
    SCHEME,
    SEED,
    SIGNATURE_VERSION,
    Facts,
    Signature,
    band_keys,
    bucket_keys,
    clean_lines,
    estimated_jaccard,
    facts,
    fingerprint,
    normalize_number,
    same_story,
    shingle_hash,
    shingle_text,
    shingles,
    signature,
    signature_of_shingles,
)

Story = tuple[str, str]  # (title, text)

# --- the press release and its copies -----------------------------------------------------------

ORIGINAL: Story = (
    "Pemkab Lamongan Salurkan 120 Pompa Air untuk Petani Terdampak Kemarau",
    "\n".join([
        "LAMONGAN, LamonganPos.com – Pemerintah Kabupaten Lamongan menyalurkan 120 unit pompa air "
        "kepada kelompok tani di 14 kecamatan yang terdampak musim kemarau. Penyerahan bantuan "
        "dilakukan secara simbolis oleh Bupati Lamongan Hendra Wicaksono di halaman Pendopo "
        "Lokatantra, Selasa (16/7/2024).",
        "Hendra mengatakan, bantuan tersebut diberikan agar petani tetap bisa mengairi sawah "
        "meskipun debit sungai dan saluran irigasi terus menurun. Menurut dia, sekitar 3.400 "
        "hektare lahan padi di wilayah selatan Lamongan berisiko gagal panen jika tidak segera "
        "mendapat pasokan air.",
        "“Kami tidak ingin petani menanggung kerugian karena kekeringan. Pompa ini bisa langsung "
        "dipakai untuk menyedot air dari sumur dalam maupun embung desa,” ujar Hendra.",
        "Baca juga: Harga Gabah di Lamongan Mulai Naik Jelang Panen Gadu",
        "Kepala Dinas Tanaman Pangan, Hortikultura dan Perkebunan Lamongan, Sri Wahyuningsih, "
        "menjelaskan bahwa pengadaan pompa bersumber dari APBD 2024 dengan nilai Rp 2,8 miliar. "
        "Setiap pompa berkapasitas 8 inci dan mampu mengalirkan air hingga 1.200 liter per menit.",
        "Ia menambahkan, kelompok tani penerima dipilih berdasarkan usulan para penyuluh "
        "pertanian lapangan. Kecamatan Sambeng, Mantup, Kembangbahu, dan Ngimbang menjadi "
        "prioritas karena paling sering mengalami kekeringan setiap tahun.",
        "Selain pompa, pemerintah daerah juga menyiapkan 25 ribu liter solar untuk operasional "
        "pompa selama tiga bulan ke depan. Petani cukup menunjukkan kartu tani saat mengambil "
        "jatah bahan bakar di SPBU yang sudah ditunjuk.",
        "Salah satu penerima, Ketua Kelompok Tani Sumber Rejeki Desa Sumberaji, Mukhlis, mengaku "
        "lega dengan bantuan tersebut. Menurutnya, selama dua pekan terakhir para petani harus "
        "bergantian menyewa pompa dengan biaya Rp 150.000 per hari. (red/ahm)",
    ]),
)

# Reworded title, another dateline, one sentence dropped, a WordPress footer.
COPY_DROPPED: Story = (
    "120 Pompa Air Dibagikan Pemkab Lamongan ke Petani di 14 Kecamatan",
    "\n".join([
        "Lamongan (suaralamongan.id) – Pemerintah Kabupaten Lamongan menyalurkan 120 unit pompa "
        "air kepada kelompok tani di 14 kecamatan yang terdampak musim kemarau. Penyerahan "
        "bantuan dilakukan secara simbolis oleh Bupati Lamongan Hendra Wicaksono di halaman "
        "Pendopo Lokatantra, Selasa (16/7/2024).",
        "Hendra mengatakan, bantuan tersebut diberikan agar petani tetap bisa mengairi sawah "
        "meskipun debit sungai dan saluran irigasi terus menurun. Menurut dia, sekitar 3.400 "
        "hektare lahan padi di wilayah selatan Lamongan berisiko gagal panen jika tidak segera "
        "mendapat pasokan air.",
        "“Kami tidak ingin petani menanggung kerugian karena kekeringan. Pompa ini bisa langsung "
        "dipakai untuk menyedot air dari sumur dalam maupun embung desa,” ujar Hendra.",
        "Kepala Dinas Tanaman Pangan, Hortikultura dan Perkebunan Lamongan, Sri Wahyuningsih, "
        "menjelaskan bahwa pengadaan pompa bersumber dari APBD 2024 dengan nilai Rp 2,8 miliar.",
        "Ia menambahkan, kelompok tani penerima dipilih berdasarkan usulan para penyuluh "
        "pertanian lapangan. Kecamatan Sambeng, Mantup, Kembangbahu, dan Ngimbang menjadi "
        "prioritas karena paling sering mengalami kekeringan setiap tahun.",
        "Selain pompa, pemerintah daerah juga menyiapkan 25 ribu liter solar untuk operasional "
        "pompa selama tiga bulan ke depan. Petani cukup menunjukkan kartu tani saat mengambil "
        "jatah bahan bakar di SPBU yang sudah ditunjuk.",
        "Salah satu penerima, Ketua Kelompok Tani Sumber Rejeki Desa Sumberaji, Mukhlis, mengaku "
        "lega dengan bantuan tersebut. Menurutnya, selama dua pekan terakhir para petani harus "
        "bergantian menyewa pompa dengan biaya Rp 150.000 per hari.",
        "The post 120 Pompa Air Dibagikan Pemkab Lamongan ke Petani di 14 Kecamatan appeared "
        "first on Suara Lamongan.",
    ]),
)

# Outlet-first dateline, a sentence added (with a new number), editor and writer credits.
COPY_ADDED: Story = (
    "Antisipasi Kekeringan, Bupati Hendra Serahkan Pompa Air ke Kelompok Tani",
    "\n".join([
        "JatimKini.com, Lamongan - Pemerintah Kabupaten Lamongan menyalurkan 120 unit pompa air "
        "kepada kelompok tani di 14 kecamatan yang terdampak musim kemarau. Penyerahan bantuan "
        "dilakukan secara simbolis oleh Bupati Lamongan Hendra Wicaksono di halaman Pendopo "
        "Lokatantra, Selasa (16/7/2024).",
        "Hendra mengatakan, bantuan tersebut diberikan agar petani tetap bisa mengairi sawah "
        "meskipun debit sungai dan saluran irigasi terus menurun. Menurut dia, sekitar 3.400 "
        "hektare lahan padi di wilayah selatan Lamongan berisiko gagal panen jika tidak segera "
        "mendapat pasokan air. Data dinas mencatat tidak ada hujan sama sekali di 9 pos "
        "pengamatan sejak awal Juni.",
        "“Kami tidak ingin petani menanggung kerugian karena kekeringan. Pompa ini bisa langsung "
        "dipakai untuk menyedot air dari sumur dalam maupun embung desa,” ujar Hendra.",
        "Kepala Dinas Tanaman Pangan, Hortikultura dan Perkebunan Lamongan, Sri Wahyuningsih, "
        "menjelaskan bahwa pengadaan pompa bersumber dari APBD 2024 dengan nilai Rp 2,8 miliar. "
        "Setiap pompa berkapasitas 8 inci dan mampu mengalirkan air hingga 1.200 liter per menit.",
        "Ia menambahkan, kelompok tani penerima dipilih berdasarkan usulan para penyuluh "
        "pertanian lapangan. Kecamatan Sambeng, Mantup, Kembangbahu, dan Ngimbang menjadi "
        "prioritas karena paling sering mengalami kekeringan setiap tahun.",
        "Selain pompa, pemerintah daerah juga menyiapkan 25 ribu liter solar untuk operasional "
        "pompa selama tiga bulan ke depan. Petani cukup menunjukkan kartu tani saat mengambil "
        "jatah bahan bakar di SPBU yang sudah ditunjuk.",
        "Salah satu penerima, Ketua Kelompok Tani Sumber Rejeki Desa Sumberaji, Mukhlis, mengaku "
        "lega dengan bantuan tersebut. Menurutnya, selama dua pekan terakhir para petani harus "
        "bergantian menyewa pompa dengan biaya Rp 150.000 per hari.",
        "Editor: Rina Kartika",
        "Penulis: Dwi Prasetyo",
    ]),
)

# Paragraphs reordered, a few verbs changed, numbers written another way, a "Baca juga" line.
COPY_REORDERED: Story = (
    "Pemkab Lamongan Bagikan Ratusan Pompa Air, Petani Lega",
    "\n".join([
        "KABARJATIM, LAMONGAN – Pemerintah Kabupaten Lamongan menyalurkan 120 unit pompa air "
        "kepada kelompok tani di 14 kecamatan yang terdampak musim kemarau. Penyerahan bantuan "
        "dilakukan secara simbolis oleh Bupati Lamongan Hendra Wicaksono di halaman Pendopo "
        "Lokatantra, Selasa (16/7/2024).",
        "Hendra menyampaikan, bantuan tersebut diberikan agar petani tetap bisa mengairi sawah "
        "meskipun debit sungai dan saluran irigasi terus menurun. Menurut dia, sekitar 3400 "
        "hektare lahan padi di wilayah selatan Lamongan berisiko gagal panen jika tidak segera "
        "mendapat pasokan air.",
        "“Kami tidak ingin petani menanggung kerugian karena kekeringan. Pompa ini bisa langsung "
        "dipakai untuk menyedot air dari sumur dalam maupun embung desa,” kata Hendra.",
        "Ia menambahkan, kelompok tani penerima dipilih berdasarkan usulan para penyuluh "
        "pertanian lapangan. Kecamatan Sambeng, Mantup, Kembangbahu, dan Ngimbang menjadi "
        "prioritas karena paling sering mengalami kekeringan setiap tahun.",
        "Kepala Dinas Tanaman Pangan, Hortikultura dan Perkebunan Lamongan, Sri Wahyuningsih, "
        "menerangkan bahwa pengadaan pompa bersumber dari APBD 2024 dengan nilai Rp2,8 miliar. "
        "Setiap pompa berkapasitas 8 inci dan mampu mengalirkan air hingga 1200 liter per menit.",
        "Baca juga: Bupati Lamongan Tinjau Embung Desa yang Mulai Mengering",
        "Salah satu penerima, Ketua Kelompok Tani Sumber Rejeki Desa Sumberaji, Mukhlis, mengaku "
        "lega dengan bantuan tersebut. Menurutnya, selama dua pekan terakhir para petani harus "
        "bergantian menyewa pompa dengan biaya Rp150.000 per hari.",
        "Selain pompa, pemerintah daerah juga menyiapkan 25.000 liter solar untuk operasional "
        "pompa selama tiga bulan ke depan. Petani cukup menunjukkan kartu tani saat mengambil "
        "jatah bahan bakar di SPBU yang sudah ditunjuk.",
    ]),
)

# The hardest copy: a new lead, a reworded sentence, the last paragraph cut, credits at the end.
COPY_REWRITTEN: Story = (
    "Kemarau Panjang, Petani di 14 Kecamatan Lamongan Terima Bantuan Pompa",
    "\n".join([
        "Lamongan (ANTARA) - Sebanyak 120 unit pompa air diserahkan Pemerintah Kabupaten Lamongan "
        "kepada kelompok tani di 14 kecamatan yang dilanda kemarau panjang. Bupati Lamongan "
        "Hendra Wicaksono menyerahkan bantuan itu secara simbolis di Pendopo Lokatantra, Selasa "
        "(16/7/2024).",
        "Hendra mengatakan, bantuan tersebut diberikan agar petani tetap bisa mengairi sawah "
        "meskipun debit sungai dan saluran irigasi terus menurun. Menurut dia, sekitar 3.400 "
        "hektare lahan padi di wilayah selatan Lamongan berisiko gagal panen jika tidak segera "
        "mendapat pasokan air.",
        "“Kami tidak ingin petani menanggung kerugian karena kekeringan. Pompa ini bisa langsung "
        "dipakai untuk menyedot air dari sumur dalam maupun embung desa,” ujar Hendra.",
        "Kepala Dinas Tanaman Pangan, Hortikultura dan Perkebunan Lamongan, Sri Wahyuningsih, "
        "menjelaskan bahwa pengadaan pompa bersumber dari APBD 2024 dengan nilai Rp 2,8 miliar. "
        "Setiap pompa berkapasitas 8 inci dan sanggup mengalirkan hingga 1.200 liter air per "
        "menit.",
        "Ia menambahkan, kelompok tani penerima dipilih berdasarkan usulan para penyuluh "
        "pertanian lapangan. Kecamatan Sambeng, Mantup, Kembangbahu, dan Ngimbang menjadi "
        "prioritas karena paling sering mengalami kekeringan setiap tahun.",
        "Selain pompa, pemerintah daerah juga menyiapkan 25 ribu liter solar untuk operasional "
        "pompa selama tiga bulan ke depan. Petani cukup menunjukkan kartu tani saat mengambil "
        "jatah bahan bakar di SPBU yang sudah ditunjuk. (*)",
    ]),
)

COPIES = [ORIGINAL, COPY_DROPPED, COPY_ADDED, COPY_REORDERED, COPY_REWRITTEN]

# --- template traps: weekly drug-bust reports -----------------------------------------------------

DRUGS_JEMBER: Story = (
    "Sepekan, Satresnarkoba Polres Jember Tangkap 3 Pengedar Sabu",
    "\n".join([
        "JEMBER, TapalKudaNews.com – Satresnarkoba Polres Jember kembali mengungkap peredaran "
        "narkotika jenis sabu di wilayah hukumnya. Dalam sepekan terakhir, petugas menangkap tiga "
        "tersangka dari dua lokasi berbeda.",
        "Kasat Resnarkoba Polres Jember AKP Bambang Sutrisno mengatakan, para tersangka ditangkap "
        "setelah polisi menerima informasi dari masyarakat terkait maraknya transaksi sabu di "
        "kawasan Ambulu dan Balung.",
        "“Dari tangan para tersangka, kami mengamankan barang bukti sabu seberat 14,6 gram, empat "
        "unit telepon genggam, timbangan digital, serta uang tunai Rp 3.250.000 yang diduga hasil "
        "penjualan,” kata Bambang saat konferensi pers di Mapolres Jember, Kamis (11/7/2024).",
        "Tersangka pertama berinisial RH (34), warga Kecamatan Ambulu, ditangkap di rumahnya. "
        "Sementara dua tersangka lain, AS (27) dan DN (41), diamankan di sebuah warung kopi di "
        "Kecamatan Balung saat menunggu pembeli.",
        "Menurut Bambang, para tersangka mengaku mendapatkan sabu dari seseorang yang kini masih "
        "dalam pengejaran. Polisi juga mendalami kemungkinan jaringan tersebut terhubung dengan "
        "pengedar di luar kota.",
        "Atas perbuatannya, para tersangka dijerat Pasal 114 ayat (1) subsider Pasal 112 ayat (1) "
        "Undang-Undang Nomor 35 Tahun 2009 tentang Narkotika dengan ancaman hukuman minimal 5 "
        "tahun dan maksimal 20 tahun penjara.",
        "“Kami mengimbau masyarakat untuk tidak ragu melapor jika mengetahui adanya peredaran "
        "narkoba di lingkungannya. Identitas pelapor kami jamin kerahasiaannya,” pungkasnya.",
    ]),
)

DRUGS_LUMAJANG: Story = (
    "Polres Lumajang Ungkap Peredaran Sabu, Dua Pemuda Diamankan",
    "\n".join([
        "Lumajang (lumajangsatu.id) – Satresnarkoba Polres Lumajang kembali mengungkap peredaran "
        "narkotika jenis sabu di wilayah hukumnya. Dalam sepekan terakhir, petugas menangkap dua "
        "tersangka dari dua lokasi berbeda.",
        "Kasat Resnarkoba Polres Lumajang AKP Hari Purnomo mengatakan, para tersangka ditangkap "
        "setelah polisi menerima informasi dari masyarakat terkait maraknya transaksi sabu di "
        "kawasan Tempeh dan Pasirian.",
        "“Dari tangan para tersangka, kami mengamankan barang bukti sabu seberat 6,2 gram, dua "
        "unit telepon genggam, timbangan digital, serta uang tunai Rp 1.100.000 yang diduga hasil "
        "penjualan,” kata Hari saat konferensi pers di Mapolres Lumajang, Jumat (12/7/2024).",
        "Tersangka pertama berinisial MF (23), warga Kecamatan Tempeh, ditangkap di rumahnya. "
        "Sementara tersangka kedua, YP (30), diamankan di sebuah warung kopi di Kecamatan "
        "Pasirian saat menunggu pembeli.",
        "Menurut Hari, para tersangka mengaku mendapatkan sabu dari seseorang yang kini masih "
        "dalam pengejaran. Polisi juga mendalami kemungkinan jaringan tersebut terhubung dengan "
        "pengedar di luar kota.",
        "Atas perbuatannya, para tersangka dijerat Pasal 114 ayat (1) subsider Pasal 112 ayat (1) "
        "Undang-Undang Nomor 35 Tahun 2009 tentang Narkotika dengan ancaman hukuman minimal 5 "
        "tahun dan maksimal 20 tahun penjara.",
        "“Kami mengimbau masyarakat untuk tidak ragu melapor jika mengetahui adanya peredaran "
        "narkoba di lingkungannya. Identitas pelapor kami jamin kerahasiaannya,” pungkasnya. "
        "(red/fik)",
    ]),
)

DRUGS_BONDOWOSO: Story = (
    "Transaksi Sabu di Warung Kopi, Tiga Warga Bondowoso Ditangkap",
    "\n".join([
        "BONDOWOSO, IjenPost.com – Satresnarkoba Polres Bondowoso kembali mengungkap peredaran "
        "narkotika jenis sabu di wilayah hukumnya. Dalam sepekan terakhir, petugas menangkap tiga "
        "tersangka dari tiga lokasi berbeda.",
        "Kasat Resnarkoba Polres Bondowoso AKP Slamet Riyadi mengatakan, para tersangka ditangkap "
        "setelah polisi menerima informasi dari masyarakat terkait maraknya transaksi sabu di "
        "kawasan Tamanan, Wonosari dan Tenggarang.",
        "“Dari tangan para tersangka, kami mengamankan barang bukti sabu seberat 9,8 gram, tiga "
        "unit telepon genggam, timbangan digital, serta uang tunai Rp 2.400.000 yang diduga hasil "
        "penjualan,” kata Slamet saat konferensi pers di Mapolres Bondowoso, Kamis (11/7/2024).",
        "Tersangka pertama berinisial HS (45), warga Kecamatan Tamanan, ditangkap di rumahnya. "
        "Sementara tersangka BW (29) dan ER (36) diamankan di sebuah warung kopi di Kecamatan "
        "Wonosari saat menunggu pembeli.",
        "Menurut Slamet, para tersangka mengaku mendapatkan sabu dari seseorang yang kini masih "
        "dalam pengejaran. Polisi juga mendalami kemungkinan jaringan tersebut terhubung dengan "
        "pengedar di luar kota.",
        "Atas perbuatannya, para tersangka dijerat Pasal 114 ayat (1) subsider Pasal 112 ayat (1) "
        "Undang-Undang Nomor 35 Tahun 2009 tentang Narkotika dengan ancaman hukuman minimal 5 "
        "tahun dan maksimal 20 tahun penjara.",
        "“Kami mengimbau masyarakat untuk tidak ragu melapor jika mengetahui adanya peredaran "
        "narkoba di lingkungannya. Identitas pelapor kami jamin kerahasiaannya,” pungkasnya.",
    ]),
)

# --- template traps: market prices (one market on two days, another market on the first day) ------

MARKET_MADIUN_MONDAY: Story = (
    "Harga Cabai Rawit di Pasar Besar Madiun Tembus Rp 60 Ribu",
    "\n".join([
        "MADIUN, MadiunToday.id – Harga sejumlah kebutuhan pokok di Pasar Besar Madiun terpantau "
        "naik pada Senin (15/7/2024). Kenaikan paling tinggi terjadi pada komoditas cabai rawit "
        "merah yang kini dijual Rp 60.000 per kilogram, dari sebelumnya Rp 45.000.",
        "Pantauan di lapangan, harga bawang merah juga naik menjadi Rp 38.000 per kilogram. "
        "Sementara bawang putih bertahan di kisaran Rp 36.000 per kilogram.",
        "Untuk beras medium dijual Rp 13.000 per kilogram dan beras premium Rp 15.500 per "
        "kilogram. Harga minyak goreng kemasan berada di angka Rp 18.000 per liter, sedangkan "
        "gula pasir Rp 17.500 per kilogram.",
        "Telur ayam ras dijual Rp 27.000 per kilogram dan daging ayam ras Rp 36.500 per kilogram. "
        "Adapun harga daging sapi stabil di kisaran Rp 125.000 per kilogram.",
        "Salah satu pedagang, Suwarni, mengatakan kenaikan harga cabai dipicu berkurangnya "
        "pasokan dari petani di lereng Wilis akibat cuaca. “Barangnya sedikit, jadi harganya "
        "naik. Pembeli juga mulai mengurangi belanja,” ujarnya.",
        "Kepala Dinas Perdagangan Kota Madiun Agus Setiawan mengatakan pihaknya terus memantau "
        "perkembangan harga dan menyiapkan operasi pasar bila kenaikan berlanjut.",
    ]),
)

MARKET_MADIUN_THURSDAY: Story = (
    "Harga Cabai di Pasar Besar Madiun Mulai Turun",
    "\n".join([
        "MADIUN, MadiunToday.id – Harga sejumlah kebutuhan pokok di Pasar Besar Madiun terpantau "
        "turun pada Kamis (18/7/2024). Penurunan paling tinggi terjadi pada komoditas cabai rawit "
        "merah yang kini dijual Rp 52.000 per kilogram, dari sebelumnya Rp 60.000.",
        "Pantauan di lapangan, harga bawang merah juga turun menjadi Rp 35.000 per kilogram. "
        "Sementara bawang putih bertahan di kisaran Rp 36.000 per kilogram.",
        "Untuk beras medium dijual Rp 13.000 per kilogram dan beras premium Rp 15.500 per "
        "kilogram. Harga minyak goreng kemasan berada di angka Rp 18.000 per liter, sedangkan "
        "gula pasir Rp 17.500 per kilogram.",
        "Telur ayam ras dijual Rp 26.000 per kilogram dan daging ayam ras Rp 35.000 per kilogram. "
        "Adapun harga daging sapi stabil di kisaran Rp 125.000 per kilogram.",
        "Salah satu pedagang, Suwarni, mengatakan penurunan harga cabai dipicu mulai lancarnya "
        "pasokan dari petani di lereng Wilis. “Barangnya mulai banyak, jadi harganya turun. "
        "Pembeli juga mulai kembali,” ujarnya.",
        "Kepala Dinas Perdagangan Kota Madiun Agus Setiawan mengatakan pihaknya terus memantau "
        "perkembangan harga dan menyiapkan operasi pasar bila harga kembali naik.",
    ]),
)

MARKET_PONOROGO_MONDAY: Story = (
    "Cabai Rawit di Pasar Legi Ponorogo Naik Jadi Rp 58 Ribu per Kilogram",
    "\n".join([
        "PONOROGO, ReogNews.com – Harga sejumlah kebutuhan pokok di Pasar Legi Ponorogo terpantau "
        "naik pada Senin (15/7/2024). Kenaikan paling tinggi terjadi pada komoditas cabai rawit "
        "merah yang kini dijual Rp 58.000 per kilogram, dari sebelumnya Rp 44.000.",
        "Pantauan di lapangan, harga bawang merah juga naik menjadi Rp 37.000 per kilogram. "
        "Sementara bawang putih bertahan di kisaran Rp 35.000 per kilogram.",
        "Untuk beras medium dijual Rp 12.800 per kilogram dan beras premium Rp 15.000 per "
        "kilogram. Harga minyak goreng kemasan berada di angka Rp 17.500 per liter, sedangkan "
        "gula pasir Rp 17.000 per kilogram.",
        "Telur ayam ras dijual Rp 26.500 per kilogram dan daging ayam ras Rp 35.000 per kilogram. "
        "Adapun harga daging sapi stabil di kisaran Rp 120.000 per kilogram.",
        "Salah satu pedagang, Painem, mengatakan kenaikan harga cabai dipicu berkurangnya pasokan "
        "dari petani di Pulung dan Sooko akibat cuaca. “Barangnya sedikit, jadi harganya naik. "
        "Pembeli juga mulai mengurangi belanja,” ujarnya.",
        "Kepala Dinas Perdagangan, Koperasi dan Usaha Mikro Ponorogo Wahyu Hidayat mengatakan "
        "pihaknya terus memantau perkembangan harga dan menyiapkan operasi pasar bila kenaikan "
        "berlanjut.",
    ]),
)

# --- template traps: weather warnings for two areas on one day ------------------------------------

WEATHER_TAPAL_KUDA: Story = (
    "BMKG Peringatkan Hujan Lebat dan Angin Kencang di Tapal Kuda",
    "\n".join([
        "SURABAYA, JatimHariIni.com – Badan Meteorologi, Klimatologi, dan Geofisika (BMKG) "
        "Stasiun Meteorologi Juanda mengeluarkan peringatan dini cuaca ekstrem untuk sejumlah "
        "daerah di Jawa Timur pada Rabu (17/7/2024). Hujan dengan intensitas sedang hingga lebat "
        "disertai petir dan angin kencang diperkirakan terjadi mulai pukul 13.00 hingga 17.00 "
        "WIB.",
        "Wilayah yang berpotensi terdampak meliputi Kabupaten Jember (Kecamatan Silo, Tempurejo, "
        "Mumbulsari), Kabupaten Banyuwangi (Kecamatan Glenmore, Kalibaru, Songgon), Kabupaten "
        "Bondowoso (Kecamatan Maesan, Grujugan), dan Kabupaten Situbondo (Kecamatan "
        "Sumbermalang).",
        "Prakirawan BMKG Juanda, Dimas Ardiansyah, mengatakan kondisi tersebut dipicu oleh "
        "kelembapan udara yang tinggi dan adanya pola pertemuan angin di wilayah timur Jawa "
        "Timur.",
        "Masyarakat diimbau waspada terhadap potensi bencana hidrometeorologi seperti banjir, "
        "tanah longsor, pohon tumbang, dan jalan licin. Warga yang tinggal di lereng perbukitan "
        "diminta mengungsi sementara bila hujan turun deras dalam waktu lama.",
        "Informasi cuaca terbaru dapat dipantau melalui aplikasi dan media sosial resmi BMKG.",
    ]),
)

WEATHER_MATARAMAN: Story = (
    "Peringatan Dini Cuaca Ekstrem untuk Wilayah Mataraman",
    "\n".join([
        "Surabaya (jatimupdate.id) – Badan Meteorologi, Klimatologi, dan Geofisika (BMKG) Stasiun "
        "Meteorologi Juanda mengeluarkan peringatan dini cuaca ekstrem untuk sejumlah daerah di "
        "Jawa Timur pada Rabu (17/7/2024). Hujan dengan intensitas sedang hingga lebat disertai "
        "petir dan angin kencang diperkirakan terjadi mulai pukul 14.00 hingga 18.00 WIB.",
        "Wilayah yang berpotensi terdampak meliputi Kabupaten Pacitan (Kecamatan Arjosari, "
        "Nawangan, Tegalombo), Kabupaten Ponorogo (Kecamatan Ngrayun, Slahung), Kabupaten "
        "Trenggalek (Kecamatan Dongko, Panggul, Munjungan), dan Kabupaten Magetan (Kecamatan "
        "Plaosan).",
        "Prakirawan BMKG Juanda, Dimas Ardiansyah, mengatakan kondisi tersebut dipicu oleh "
        "kelembapan udara yang tinggi dan belokan angin di wilayah selatan Jawa Timur.",
        "Masyarakat diimbau waspada terhadap potensi bencana hidrometeorologi seperti banjir, "
        "tanah longsor, pohon tumbang, dan jalan licin. Warga yang tinggal di lereng perbukitan "
        "diminta mengungsi sementara bila hujan turun deras dalam waktu lama.",
        "Informasi cuaca terbaru dapat dipantau melalui aplikasi dan media sosial resmi BMKG.",
    ]),
)

# --- template traps: accidents ------------------------------------------------------------------

ACCIDENT_TUBAN: Story = (
    "Hendak Menyalip, Pemotor Tabrakan dengan Truk di Jalur Pantura Tuban",
    "\n".join([
        "TUBAN, RonggolaweNews.com – Kecelakaan lalu lintas terjadi di Jalan Raya Tuban–Semarang, "
        "Desa Tasikmadu, Kecamatan Palang, Senin (8/7/2024) sekitar pukul 06.30 WIB. Kecelakaan "
        "melibatkan sepeda motor Honda Beat bernomor polisi S 4821 HK yang dikendarai AR (22) dan "
        "truk tronton bernomor polisi W 9175 UZ.",
        "Kasat Lantas Polres Tuban AKP Eko Prasetyo mengatakan, kecelakaan bermula saat sepeda "
        "motor yang melaju dari arah timur hendak mendahului kendaraan di depannya. Dari arah "
        "berlawanan melaju truk, sehingga tabrakan tidak dapat dihindari.",
        "Akibat kejadian tersebut, pengendara sepeda motor mengalami luka berat di bagian kepala "
        "dan dilarikan ke RSUD dr. Koesma Tuban. Sopir truk selamat dan kini diamankan di "
        "Mapolres Tuban untuk dimintai keterangan.",
        "“Kami mengimbau pengendara untuk lebih berhati-hati, terutama saat hendak mendahului "
        "kendaraan lain. Pastikan kondisi jalan dari arah berlawanan benar-benar aman,” ujarnya.",
        "Polisi telah melakukan olah tempat kejadian perkara dan mengamankan kedua kendaraan "
        "sebagai barang bukti. Arus lalu lintas di lokasi sempat tersendat selama hampir satu jam "
        "sebelum kembali normal setelah kendaraan dievakuasi petugas.",
    ]),
)

ACCIDENT_NGANJUK: Story = (
    "Motor Adu Banteng dengan Truk di Nganjuk, Pengendara Luka Berat",
    "\n".join([
        "Nganjuk (anjukzone.id) – Kecelakaan lalu lintas terjadi di Jalan Raya Nganjuk–Kediri, "
        "Desa Kedungdowo, Kecamatan Tanjunganom, Rabu (10/7/2024) sekitar pukul 19.15 WIB. "
        "Kecelakaan melibatkan sepeda motor Yamaha Vixion bernomor polisi AG 6043 RF yang "
        "dikendarai SW (35) dan truk boks bernomor polisi L 8812 AB.",
        "Kasat Lantas Polres Nganjuk AKP Teguh Santoso mengatakan, kecelakaan bermula saat sepeda "
        "motor yang melaju dari arah utara hendak mendahului kendaraan di depannya. Dari arah "
        "berlawanan melaju truk, sehingga tabrakan tidak dapat dihindari.",
        "Akibat kejadian tersebut, pengendara sepeda motor mengalami luka berat di bagian kepala "
        "dan dilarikan ke RSUD Nganjuk. Sopir truk selamat dan kini diamankan di Mapolres Nganjuk "
        "untuk dimintai keterangan.",
        "“Kami mengimbau pengendara untuk lebih berhati-hati, terutama saat hendak mendahului "
        "kendaraan lain. Pastikan kondisi jalan dari arah berlawanan benar-benar aman,” ujarnya.",
        "Polisi telah melakukan olah tempat kejadian perkara dan mengamankan kedua kendaraan "
        "sebagai barang bukti. Arus lalu lintas di lokasi sempat tersendat selama hampir satu jam "
        "sebelum kembali normal setelah kendaraan dievakuasi petugas.",
    ]),
)

# --- unrelated stories of the same regions --------------------------------------------------------

LAMONGAN_GABAH: Story = (
    "Harga Gabah di Lamongan Mulai Naik Jelang Panen Gadu",
    "\n".join([
        "LAMONGAN, LamonganPos.com – Harga gabah kering panen di tingkat petani Lamongan mulai "
        "merangkak naik menjelang panen gadu. Di Kecamatan Babat dan Pucuk, tengkulak kini "
        "membeli gabah seharga Rp 6.800 per kilogram, lebih tinggi dibandingkan bulan lalu yang "
        "hanya Rp 6.200.",
        "Kenaikan itu disambut gembira petani. Siti Aminah, petani asal Desa Gembong, mengatakan "
        "hasil panennya tahun ini lebih sedikit karena serangan hama wereng, sehingga harga yang "
        "lebih baik cukup menutup biaya pupuk.",
        "Perum Bulog Cabang Bojonegoro menyatakan siap menyerap gabah petani sesuai harga "
        "pembelian pemerintah. Gudang Bulog di Lamongan saat ini masih mampu menampung sekitar 12 "
        "ribu ton gabah.",
    ]),
)

LAMONGAN_WISATA: Story = (
    "Wisata Bahari Lamongan Diserbu Pengunjung Saat Libur Sekolah",
    "\n".join([
        "Lamongan (suaralamongan.id) – Kawasan Wisata Bahari Lamongan di Kecamatan Paciran "
        "dipadati pengunjung selama libur sekolah. Pengelola mencatat lebih dari 18.000 wisatawan "
        "datang dalam tiga hari terakhir, sebagian besar rombongan keluarga dari Gresik, Tuban, "
        "dan Bojonegoro.",
        "Manajer operasional WBL, Yudi Hartono, mengatakan pihaknya menambah petugas keamanan dan "
        "penjaga pantai untuk mengantisipasi lonjakan pengunjung. Antrean kendaraan sempat "
        "mengular hingga jalan raya Daendels pada Minggu siang.",
        "Pedagang di sekitar kawasan wisata ikut merasakan berkah. Omzet penjual ikan bakar dan "
        "oleh-oleh khas pesisir naik hingga dua kali lipat dibandingkan hari biasa.",
    ]),
)

MALANG_BANJIR: Story = (
    "Hujan Deras, Sejumlah Ruas Jalan di Kota Malang Tergenang",
    "\n".join([
        "MALANG, MalangRaya.id – Hujan deras yang mengguyur Kota Malang sejak Minggu sore "
        "menyebabkan sejumlah ruas jalan tergenang. Genangan setinggi 40 sentimeter terlihat di "
        "Jalan Soekarno-Hatta dan kawasan Sawojajar, membuat arus lalu lintas tersendat hingga "
        "malam hari.",
        "Kepala Pelaksana BPBD Kota Malang Prayitno Adi mengatakan genangan dipicu saluran "
        "drainase yang tersumbat sampah. Petugas gabungan langsung dikerahkan untuk membersihkan "
        "gorong-gorong di lima titik.",
        "Warga diminta tidak membuang sampah ke sungai dan saluran air. Pemerintah kota juga "
        "berencana melebarkan saluran di kawasan Dinoyo yang setiap tahun menjadi langganan "
        "banjir.",
    ]),
)

MALANG_SEKOLAH: Story = (
    "Ratusan Calon Siswa di Malang Belum Dapat Sekolah Negeri",
    "\n".join([
        "Malang (beritamalang.id) – Sebanyak 312 calon siswa SMP di Kabupaten Malang belum "
        "tertampung di sekolah negeri setelah seleksi penerimaan peserta didik baru ditutup. "
        "Sebagian besar berasal dari Kecamatan Dau, Karangploso, dan Singosari.",
        "Kepala Dinas Pendidikan Kabupaten Malang Suwadji mengatakan pihaknya berkoordinasi "
        "dengan sekolah swasta agar para siswa tetap bisa melanjutkan pendidikan. Beasiswa juga "
        "disiapkan bagi siswa dari keluarga kurang mampu.",
        "Orang tua siswa berharap pemerintah menambah ruang kelas baru, terutama di wilayah utara "
        "Malang yang jumlah penduduknya terus bertambah.",
    ]),
)

TRAP_GROUPS = {
    "drugs": [DRUGS_JEMBER, DRUGS_LUMAJANG, DRUGS_BONDOWOSO],
    "market": [MARKET_MADIUN_MONDAY, MARKET_MADIUN_THURSDAY, MARKET_PONOROGO_MONDAY],
    "weather": [WEATHER_TAPAL_KUDA, WEATHER_MATARAMAN],
    "accident": [ACCIDENT_TUBAN, ACCIDENT_NGANJUK],
}
UNRELATED = [LAMONGAN_GABAH, LAMONGAN_WISATA, MALANG_BANJIR, MALANG_SEKOLAH]
TRAPS = [story for group in TRAP_GROUPS.values() for story in group]
ALL = [*COPIES, *TRAPS, *UNRELATED]
# Every story stands for its own story, except the copies, which are one.
STORY_ID = {id(s): (0 if s in COPIES else i + 1) for i, s in enumerate(ALL)}


def verdict(a: Story, b: Story) -> tuple[bool, float, str]:
    sa, fa = fingerprint(*a)
    sb, fb = fingerprint(*b)
    v = same_story(sa, fa, sb, fb)
    return v.same, v.jaccard, v.reason


def true_jaccard(a: Story, b: Story) -> float:
    x, y = shingles(shingle_text(*a)), shingles(shingle_text(*b))
    return len(x & y) / len(x | y)


# --- the verdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("i", "j"), list(itertools.combinations(range(len(COPIES)), 2)))
def test_copies_are_one_story(i: int, j: int) -> None:
    same, jac, reason = verdict(COPIES[i], COPIES[j])
    assert same, reason
    assert jac >= MATCH_THRESHOLD


@pytest.mark.parametrize(
    ("group", "i", "j"),
    [(g, i, j) for g, stories in TRAP_GROUPS.items()
     for i, j in itertools.combinations(range(len(stories)), 2)],
)
def test_template_traps_are_different_stories(group: str, i: int, j: int) -> None:
    same, _, reason = verdict(TRAP_GROUPS[group][i], TRAP_GROUPS[group][j])
    assert not same, reason


def test_template_traps_do_share_their_templates() -> None:
    """The traps are real traps: text similarity alone would merge a pair of each kind."""
    for group, stories in TRAP_GROUPS.items():
        best = max(true_jaccard(a, b) for a, b in itertools.combinations(stories, 2))
        assert best >= MATCH_THRESHOLD, group


def test_every_other_pair_is_different() -> None:
    for a, b in itertools.combinations(ALL, 2):
        if STORY_ID[id(a)] == STORY_ID[id(b)]:
            continue
        same, _, reason = verdict(a, b)
        assert not same, (a[0], b[0], reason)


def test_unrelated_stories_share_almost_no_text() -> None:
    for a, b in itertools.combinations([*UNRELATED, ORIGINAL], 2):
        assert true_jaccard(a, b) < 0.05


def test_reason_says_why() -> None:
    assert verdict(ORIGINAL, COPY_ADDED)[2].startswith("same: text similarity")
    assert "dates conflict (15/7 vs 18/7) and numbers differ" in verdict(
        MARKET_MADIUN_MONDAY, MARKET_MADIUN_THURSDAY)[2]
    assert "numbers conflict" in verdict(DRUGS_JEMBER, DRUGS_LUMAJANG)[2]
    assert "names conflict" in verdict(WEATHER_TAPAL_KUDA, WEATHER_MATARAMAN)[2] or (
        "numbers conflict" in verdict(WEATHER_TAPAL_KUDA, WEATHER_MATARAMAN)[2])
    assert f"< {MATCH_THRESHOLD}" in verdict(ORIGINAL, MALANG_BANJIR)[2]


def test_one_number_dropped_and_another_added_is_no_conflict() -> None:
    """Feed farm case: one copy lost its budget sentence, the other gained a statistic."""
    sa, fa = fingerprint(*ORIGINAL)
    sb, fb = fingerprint(*COPY_DROPPED)
    a = dataclasses.replace(fa, numbers=frozenset({"91600000000", "081270357418"}))
    b = dataclasses.replace(fb, numbers=frozenset({"19", "081270357418"}))
    assert same_story(sa, a, sb, b).same
    c = dataclasses.replace(fb, numbers=frozenset({"19", "20"}))
    assert "numbers conflict" in same_story(sa, a, sb, c).reason


def test_verdicts_are_symmetric() -> None:
    for a, b in itertools.combinations([*COPIES, *TRAPS], 2):
        assert verdict(a, b)[:2] == verdict(b, a)[:2]


def test_places_conflict_separates_similar_texts() -> None:
    sa, fa = fingerprint(*ORIGINAL)
    sb, fb = fingerprint(*COPY_DROPPED)
    here = dataclasses.replace(fa, places=frozenset({"35.24"}))
    there = dataclasses.replace(fb, places=frozenset({"35.09"}))
    both = dataclasses.replace(fb, places=frozenset({"35.24", "35.09"}))
    assert MATCH_THRESHOLD <= estimated_jaccard(sa, sb) < CERTAIN_THRESHOLD
    assert not same_story(sa, here, sb, there).same
    assert "places conflict" in same_story(sa, here, sb, there).reason
    assert same_story(sa, here, sb, both).same
    assert same_story(sa, here, sb, fb).same  # unknown places are no conflict


def test_near_identical_texts_are_one_story_whatever_the_tagger_says() -> None:
    title, text = ORIGINAL
    sa, fa = fingerprint(title, text)
    sb, fb = fingerprint(title + " (Video)", text.replace("ujar Hendra", "kata Hendra"))
    assert estimated_jaccard(sa, sb) >= CERTAIN_THRESHOLD
    a = dataclasses.replace(fa, places=frozenset({"35.24"}))
    b = dataclasses.replace(fb, places=frozenset({"35.09"}))
    assert same_story(sa, a, sb, b).same
    # ... but not when the numbers disagree: a corrected figure is not a different story, a
    # template with other figures is.
    other = dataclasses.replace(fb, numbers=frozenset({"1", "2", "3", "4", "5", "6"}))
    assert not same_story(sa, fa, sb, other).same
    assert same_story(sa, fa, sb, dataclasses.replace(fb, dates=frozenset({"1/1"}))).same
    moved = dataclasses.replace(fb, dates=frozenset({"1/1"}),
                                numbers=fb.numbers - set(sorted(fb.numbers)[:2]) | {"7", "9"})
    assert not same_story(sa, fa, sb, moved).same


NOTICE = ("Pemadaman listrik bergilir akan berlangsung di wilayah Kecamatan Kepanjen pada "
          "Senin ({date}) mulai pukul {start} hingga {end} WIB untuk pemeliharaan jaringan. Warga "
          "diminta menyiapkan penerangan cadangan dan mencabut peralatan elektronik.")


def test_a_moved_date_alone_does_not_split_copies() -> None:
    """Outlets republishing a release a day later may move its date (the feed farm's do)."""
    sa, fa = fingerprint("Pemadaman", NOTICE.format(date="15/7/2024", start="09.00", end="15.00"))
    sb, fb = fingerprint("Pemadaman", NOTICE.format(date="16/7/2024", start="09.00", end="15.00"))
    assert fa.dates != fb.dates and fa.numbers == fb.numbers
    assert same_story(sa, fa, sb, fb).same


def test_another_date_and_other_figures_are_another_story() -> None:
    sa, fa = fingerprint("Pemadaman", NOTICE.format(date="15/7/2024", start="09.00", end="15.00"))
    sb, fb = fingerprint("Pemadaman", NOTICE.format(date="22/7/2024", start="08.00", end="12.00"))
    assert estimated_jaccard(sa, sb) >= MATCH_THRESHOLD
    v = same_story(sa, fa, sb, fb)
    assert not v.same and "numbers conflict" in v.reason


def test_empty_matches_nothing() -> None:
    empty = signature("", "")
    assert empty == EMPTY_SIGNATURE and empty.is_empty
    assert signature("  ", "\n(red/xyz)\n") == EMPTY_SIGNATURE
    assert band_keys(empty) == []
    assert estimated_jaccard(empty, empty) == 0.0
    nothing = Facts(frozenset(), frozenset())
    assert not same_story(empty, nothing, empty, nothing).same
    sig, fac = fingerprint(*ORIGINAL)
    assert not same_story(sig, fac, empty, nothing).same


# --- signatures -----------------------------------------------------------------------------------


def test_parameters_are_pinned() -> None:
    """Changing any of these changes stored signatures: bump SIGNATURE_VERSION with them."""
    assert (SIGNATURE_VERSION, NUM_PERM, BANDS, ROWS, SEED, SCHEME, HASH_SEED) == (
        1, 128, 25, 5, 1, "affine32", 0)


def test_signature_round_trips_through_bytes() -> None:
    for story in ALL:
        sig = signature(*story)
        data = sig.to_bytes()
        assert len(data) == 4 * NUM_PERM
        assert Signature.from_bytes(data) == sig
        assert all(0 <= v < 2**32 for v in sig.hashvalues)
    assert EMPTY_SIGNATURE.to_bytes() == b"\xff" * (4 * NUM_PERM)
    with pytest.raises(ValueError):
        Signature.from_bytes(b"\x00" * 100)
    with pytest.raises(ValueError):
        Signature((1, 2, 3))


def test_signature_bytes_are_little_endian() -> None:
    sig = Signature(tuple(range(NUM_PERM)))
    assert sig.to_bytes()[:8] == b"\x00\x00\x00\x00\x01\x00\x00\x00"


def test_shingle_hash_is_xxh32_with_the_pinned_seed() -> None:
    for data in (b"", b"banjir rob melanda", b"kota"):
        assert shingle_hash(data) == xxhash.xxh32_intdigest(data, HASH_SEED)


def test_same_as_datasketch_affine32() -> None:
    """Our numpy computation is datasketch 2.0's MinHash, value for value."""
    for story in [*COPIES, DRUGS_JEMBER, MARKET_PONOROGO_MONDAY, ("Banjir", ""), ("a b", "c")]:
        shingle_set = shingles(shingle_text(*story))
        m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32",
                    hashfunc=lambda b: xxhash.xxh32_intdigest(b, HASH_SEED))
        m.update_batch(sorted(shingle_set))
        assert signature(*story).hashvalues == tuple(int(v) for v in m.hashvalues), story[0]


def test_large_text_is_processed_in_blocks_without_changing_the_result() -> None:
    words = " ".join(f"kata{i}" for i in range(10_000))
    shingle_set = shingles(shingle_text("", words))
    assert len(shingle_set) > 4096 * 2
    m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=xxhash.xxh32_intdigest)
    m.update_batch(shingle_set)
    assert signature("", words).hashvalues == tuple(int(v) for v in m.hashvalues)


# Computed once with the parameters above; a change of NUM_PERM, seed, scheme, hash function,
# banding or cleaning changes them, and must come with a new SIGNATURE_VERSION.
EXPECTED_BAND_KEYS = [
    (0, 5436204446322904723),
    (1, 1944271774815954840),
    (2, 8418378123957959483),
    (3, 6375662687156287263),
    (4, 2369039205103032215),
    (5, 1577932490307046150),
    (6, 6766366890061753055),
    (7, 4348405635162721359),
    (8, 5701845196802600692),
    (9, 2382215561333608107),
    (10, 8076563714830743396),
    (11, 4574732739567880862),
    (12, 8056486272107255779),
    (13, 6742617235590955956),
    (14, 3452688787759817642),
    (15, 4534823223684065246),
    (16, 5026177345704849404),
    (17, 5213068598686461969),
    (18, 1129556655702511529),
    (19, 5082208426811409641),
    (20, 194977852946204789),
    (21, 329289129160200745),
    (22, 3588829242117072376),
    (23, 7055436582369317128),
    (24, 1995684094255380895),
]


def test_band_keys_are_stable() -> None:
    keys = band_keys(signature("Banjir Rob", "Surabaya - Banjir rob melanda pesisir utara kota."))
    assert keys == EXPECTED_BAND_KEYS


def test_band_keys_do_not_depend_on_the_process() -> None:
    """No built-in hash(): another interpreter with another hash seed gives the same keys."""
    code = ("from aggregator.similarity import band_keys, signature; "
            "print(band_keys(signature('Banjir Rob', "
            "'Surabaya - Banjir rob melanda pesisir utara kota.')))")
    for hash_seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert out.stdout.strip() == str(EXPECTED_BAND_KEYS)


def test_band_keys_fit_a_bigint_and_match_for_identical_texts() -> None:
    for story in ALL:
        keys = band_keys(signature(*story))
        assert [band for band, _ in keys] == list(range(BANDS))
        assert all(0 <= key < 2**63 for _, key in keys)
        assert keys == band_keys(signature(*story))
    # Identical band values in different bands do not share a key.
    same_rows = Signature((7,) * NUM_PERM)
    assert len({key for _, key in band_keys(same_rows)}) == BANDS


def test_bucket_keys_are_the_band_keys_of_the_stored_bytes() -> None:
    sig = signature(*ORIGINAL)
    assert bucket_keys(sig.to_bytes()) == [key for _, key in band_keys(sig)]
    assert bucket_keys(EMPTY_SIGNATURE.to_bytes()) == []
    with pytest.raises(ValueError, match="512 bytes, not 0"):
        bucket_keys(b"")  # an item that was never enriched: no keys of nothing


def test_copies_share_a_bucket() -> None:
    """LSH finds the copies: every copy shares at least one bucket with the original."""
    original = set(band_keys(signature(*ORIGINAL)))
    for copy in COPIES[1:]:
        assert original & set(band_keys(signature(*copy))), copy[0]


def test_estimate_is_close_to_true_jaccard() -> None:
    errors = []
    for a, b in itertools.combinations(ALL, 2):
        est = estimated_jaccard(signature(*a), signature(*b))
        errors.append(abs(est - true_jaccard(a, b)))
    assert max(errors) <= 0.1
    assert statistics.mean(errors) <= 0.03


def test_paragraph_order_does_not_matter() -> None:
    title, text = ORIGINAL
    lines = text.split("\n")
    reordered = "\n".join([lines[0], *reversed(lines[1:-1]), lines[-1]])
    assert shingles(shingle_text(title, text)) == shingles(shingle_text(title, reordered))


# --- cleaning -------------------------------------------------------------------------------------

BODY = "Pemerintah Kota Blitar membuka pendaftaran beasiswa bagi 500 mahasiswa."


@pytest.mark.parametrize("dateline", [
    "SURABAYA, Outlet.com - ",
    "Malang (outlet.id) – ",
    "Outlet.com, Kota Blitar - ",
    "OUTLET, BANYUWANGI - ",
    "Surabaya (ANTARA) - ",
    "BLITAR - ",
    "Blitar – ",
    "Kota Blitar — ",
    "jatimnow.com, Blitar - ",
    "Blitar, 12 Juli 2024 - ",
    "TRIBUNJATIM.COM, BLITAR -- ",
    "BLITAR –\n",
])
def test_datelines_are_not_text(dateline: str) -> None:
    assert shingle_text("", dateline + BODY) == shingle_text("", BODY)
    assert facts("", dateline + BODY) == facts("", BODY)


@pytest.mark.parametrize("text", [
    "Pemerintah Kota Blitar - yang membuka pendaftaran beasiswa bagi 500 mahasiswa - menjelaskan.",
    "Jumlah penerima tahun ini naik. Sebelumnya hanya 300 - kata dia - tahun lalu.",
    "Menurut dia, pendaftaran dibuka hingga akhir bulan - lebih lama dari tahun lalu.",
])
def test_a_dash_in_a_sentence_is_not_a_dateline(text: str) -> None:
    assert shingle_text("", text) == " ".join(shingle_text("", text.replace(" - ", " ")).split())


@pytest.mark.parametrize("furniture", [
    "Baca juga: Pemkot Blitar Gelar Pasar Murah di 21 Kelurahan",
    "BACA JUGA : Wali Kota Tinjau Banjir",
    "» Baca Juga: Jadwal Samsat Keliling",
    "Editor: Rina Kartika",
    "Penulis : Dwi Prasetyo",
    "Reporter: Ahmad",
    "Pewarta: Fauzi | Editor: Santi",
    "The post Pemkot Blitar Buka Beasiswa appeared first on Blitar Kini.",
    "Artikel ini telah tayang di BlitarKini.com dengan judul Beasiswa",
    "Ikuti berita terkini dari Blitar Kini di Google News",
    "Foto: Pendaftar beasiswa di Balai Kota (Istimewa)",
])
def test_furniture_lines_are_not_text(furniture: str) -> None:
    with_it = f"{BODY}\n{furniture}\nPendaftaran dibuka hingga 31 Juli."
    without = f"{BODY}\nPendaftaran dibuka hingga 31 Juli."
    assert shingle_text("", with_it) == shingle_text("", without)
    assert facts("", with_it) == facts("", without)


@pytest.mark.parametrize("credit", [" (red/xyz)", " (red)", " (*)", " (ant/zul)", " (gem/yan)",
                                    " [rls]", "\n(red/ahm)", "\nEditor: Budi Santoso"])
def test_closing_credits_are_not_text(credit: str) -> None:
    assert shingle_text("", BODY + credit) == shingle_text("", BODY)
    assert facts("", BODY + credit) == facts("", BODY)


def test_a_closing_acronym_is_text() -> None:
    text = "Data itu dirilis Badan Meteorologi, Klimatologi, dan Geofisika (BMKG)"
    assert shingle_text("", text).endswith("bmkg")


def test_inline_footer_is_cut() -> None:
    text = BODY + " The post Beasiswa appeared first on Blitar Kini."
    assert shingle_text("", text) == shingle_text("", BODY)


def test_shingle_text_is_lowercase_words_one_paragraph_a_line() -> None:
    text = ("MALANG, Outlet.com – Harga cabai Rp12.500/kg naik\u00a0lagi!\n\n"
            "“Stok  menipis,” ujarnya.")
    assert shingle_text("Harga Naik", text) == (
        "harga naik\nharga cabai rp 12500 kg naik lagi\nstok menipis ujarnya"
    )
    # Compatibility forms fold: full-width letters and ligatures shingle like plain ones.
    assert shingle_text("", "ＭＡＬＡＮＧ ﬁnal") == shingle_text("", "malang final")


def test_shingles_are_word_trigrams_per_line() -> None:
    assert shingles("a b c d\ne f\ng") == {b"a b c", b"b c d", b"e f", b"g"}
    assert shingles("") == set()


def test_clean_lines_keeps_case() -> None:
    assert clean_lines("SURABAYA, Outlet.com - Wali Kota Surabaya hadir.\nBaca juga: X\n(red)") == [
        "Wali Kota Surabaya hadir."
    ]


# --- facts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "unit", "expected"), [
    ("12.500", None, "12500"),
    ("12500", None, "12500"),
    ("1.250.000", None, "1250000"),
    ("2,8", "miliar", "2800000000"),
    ("2.800.000.000", None, "2800000000"),
    ("25", "ribu", "25000"),
    ("14,6", None, "14.6"),
    ("15.500,50", None, "15500.5"),
    ("08", None, "8"),
    ("1,250,000", None, "1250000"),
    ("1.2.3", None, None),
])
def test_numbers_have_one_spelling(raw: str, unit: str | None, expected: str | None) -> None:
    assert normalize_number(raw, unit) == expected


def test_numbers_of_a_text() -> None:
    f = facts("", "Harga cabai Rp 12.500 per kilogram, beras Rp12500, gula 12500. Solar 25 ribu "
                  "liter senilai Rp 2,8 miliar pada Selasa (16/7/2024), G30S dan 3,5 ton.")
    assert f.numbers == frozenset({"12500", "25000", "2800000000", "3.5"})
    assert f.dates == frozenset({"16/7"})


@pytest.mark.parametrize(("text", "dates"), [
    ("Rabu (17/7/2024) siang", {"17/7"}),
    ("Rabu (17/7) siang", {"17/7"}),
    ("Rabu, 17/07/2024, dan 18-7-2024", {"17/7", "18/7"}),
    ("sejak 1 Juni hingga 17 Juli 2024, juga 3 Agt", {"1/6", "17/7", "3/8"}),
    ("lahan 1/2 hektare, angin 20-30 km/jam, skor 3/4 (10/20)", set()),
])
def test_dates_are_day_and_month(text: str, dates: set[str]) -> None:
    f = facts("", text)
    assert f.dates == dates


def test_legal_references_and_years_are_not_facts() -> None:
    f = facts("", "Tersangka dijerat Pasal 114 ayat (1) UU Nomor 35 Tahun 2009 tentang Narkotika "
                  "dan Pasal 127 KUHP sejak 2024, dengan barang bukti 14,6 gram.")
    assert f.numbers == frozenset({"14.6"})


def test_names_skip_generic_and_sentence_initial_words() -> None:
    f = facts("", "Kasat Resnarkoba Polres Jember AKP Bambang Sutrisno mengatakan tersangka RH "
                  "ditangkap di Ambulu. Petugas juga menyita sabu. Tersangka mengaku membeli di "
                  "Balung, kata Bambang. Kabupaten Jember mencatat kenaikan kasus.")
    assert {"jember", "bambang", "sutrisno", "rh", "ambulu", "balung"} <= f.names
    assert "bambang sutrisno" in f.names
    assert not f.names & {"kasat", "polres", "akp", "petugas", "tersangka", "kabupaten",
                          "polres jember", "resnarkoba"}


def test_facts_of_a_title_only_item() -> None:
    f = facts("Harga Cabai di Pasar Legi Ponorogo Naik Jadi Rp 58.000", "")
    assert "58000" in f.numbers and "ponorogo" in f.names


def test_copies_share_their_facts_and_traps_do_not() -> None:
    base = facts(*ORIGINAL)
    assert {"120", "14", "3400", "2800000000", "1200", "25000", "150000"} <= base.numbers
    assert {"hendra", "hendra wicaksono", "sumberaji", "mukhlis", "sambeng"} <= base.names
    assert "lamonganpos" not in " ".join(base.names)  # the dateline is not a fact
    jember, lumajang = facts(*DRUGS_JEMBER), facts(*DRUGS_LUMAJANG)
    assert not {"114", "112", "35", "2009"} & jember.numbers
    assert not jember.names & lumajang.names
    assert jember.dates == frozenset({"11/7"}) and lumajang.dates == frozenset({"12/7"})


# --- robustness and speed -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_arbitrary_text_never_raises(title: str, text: str) -> None:
    sig, fac = fingerprint(title, text)
    assert len(sig.to_bytes()) == 4 * NUM_PERM
    assert sig == signature(title, text) and fac == facts(title, text)
    assert Signature.from_bytes(sig.to_bytes()) == sig
    keys = band_keys(sig)
    assert len(keys) in (0, BANDS)
    assert same_story(sig, fac, sig, fac).same == (not sig.is_empty)
    # The public shingles of the explained text are exactly what the signature was made of.
    assert signature_of_shingles(shingles(shingle_text(title, text))) == sig


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["Rp", "12.500", "(red/x)", "-", "–", "Baca juga:", "\n", "Kota",
                                 "SURABAYA,", "Jember", "a", ".", "(", ")", "2024", "ribu"]),
                max_size=60))
def test_arbitrary_token_soup_never_raises(parts: list[str]) -> None:
    text = " ".join(parts)
    assert len(signature(text, text).to_bytes()) == 4 * NUM_PERM
    facts(text, text)


def test_signature_is_fast_enough() -> None:
    """Generous bound (the design target is 0.3 ms): catches an accidental per-item rebuild."""
    title, text = ORIGINAL
    article = text + "\n" + DRUGS_JEMBER[1]  # about 450 words
    signature(title, article)
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        signature(title, article)
    assert (time.perf_counter() - start) / runs < 0.003
