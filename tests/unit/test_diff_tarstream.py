"""dockyard.diff.tarstream / tarwrite: strict streaming reader, reproducible writer."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from dockyard.diff import tarstream as ts
from dockyard.diff.tarwrite import TarWriter, encode_header
from dockyard.errors import InvalidArgument


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]],
             fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti


def read_all(data: bytes) -> tuple[list[tuple[ts.TarEntry, bytes]], ts.HashingSource]:
    source = ts.HashingSource(io.BytesIO(data))
    reader = ts.TarReader(source)
    out = []
    with tempfile.TemporaryFile() as spool:
        while (entry := reader.next()) is not None:
            content = b""
            if entry.kind == ts.REG and entry.size:
                spool.seek(0)
                spool.truncate()
                reader.copy_data(spool.fileno())
                spool.seek(0)
                content = spool.read()
            out.append((entry, content))
    source.drain()
    return out, source


def test_reads_pax_gnu_and_ustar() -> None:
    long = "d/" + "x" * 150
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        data = make_tar([
            (info("dir/", tarfile.DIRTYPE, mode=0o4755, uid=7, gid=8, mtime=1000), None),
            (info(long, mtime=2000), b"hello"),
            (info("link", tarfile.SYMTYPE, linkname="/" + "y" * 200), None),
            (info("hard", tarfile.LNKTYPE, linkname=long), None),
            (info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
            (info("fifo", tarfile.FIFOTYPE), None),
        ], fmt)
        entries, source = read_all(data)
        assert [(e.name, e.kind) for e, _ in entries] == [
            ("dir/", ts.DIR), (long, ts.REG), ("link", ts.SYMLINK), ("hard", ts.LINK),
            ("dev", ts.CHR), ("fifo", ts.FIFO)]
        d, f, s, h, c, _ = (e for e, _ in entries)
        assert (d.mode, d.uid, d.gid, d.mtime_ns) == (0o4755, 7, 8, 1000 * 10**9)
        assert entries[1][1] == b"hello" and f.mtime_ns == 2000 * 10**9
        assert s.linkname == "/" + "y" * 200 and h.linkname == long
        assert (c.devmajor, c.devminor, c.mode) == (1, 3, 0o666)
        assert source.digest() == "sha256:" + hashlib.sha256(data).hexdigest()
        assert source.total == len(data)


def test_pax_xattrs_binary_big_ids_and_ns_mtime() -> None:
    ti = info("f", uid=10**8, gid=3, mtime=1700000000.25)
    ti.pax_headers = {"SCHILY.xattr.user.k": "v",
                      "SCHILY.xattr.security.capability":
                      b"\x01\x00\x00\x02\xff".decode("utf-8", "surrogateescape")}
    entries, _ = read_all(make_tar([(ti, b"")]))
    entry = entries[0][0]
    assert entry.uid == 10**8
    assert entry.mtime_ns == 1700000000_250000000
    assert entry.xattrs == {"user.k": b"v", "security.capability": b"\x01\x00\x00\x02\xff"}


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_streams_hash_uncompressed_bytes(compress) -> None:  # type: ignore[no-untyped-def]
    data = make_tar([(info("a"), b"x" * 100000)])
    entries, source = read_all(compress(data))
    assert entries[0][1] == b"x" * 100000
    assert source.digest() == "sha256:" + hashlib.sha256(data).hexdigest()


def test_zstd() -> None:
    zstandard = pytest.importorskip("zstandard")
    data = make_tar([(info("a"), b"zz")])
    entries, source = read_all(zstandard.ZstdCompressor().compress(data))
    assert entries[0][1] == b"zz" and source.compression == "zstd"
    assert source.digest() == "sha256:" + hashlib.sha256(data).hexdigest()


def test_empty_stream_is_an_empty_layer() -> None:
    entries, source = read_all(b"")
    assert entries == [] and source.digest() == "sha256:" + hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("cut", ["mid-data", "mid-header", "no-end-marker", "bad-gzip"])
def test_truncated_archives_are_refused(cut: str) -> None:
    data = make_tar([(info("a"), b"a" * 700), (info("b"), b"b" * 10)])
    if cut == "mid-data":
        data = data[:512 + 300]
    elif cut == "mid-header":
        data = data[:512 + 1024 + 100]
    elif cut == "no-end-marker":
        data = data[:512 + 1024 + 512 + 512]  # both members complete, no zero block
    else:
        data = gzip.compress(data)[:-40]
    with pytest.raises(InvalidArgument):
        read_all(data)


def test_garbage_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="checksum"):
        read_all(b"this is not a tar archive" * 100)


def test_sparse_and_unknown_types_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unsupported"):
        read_all(make_tar([(info("v", b"V"), None)], tarfile.GNU_FORMAT))


def test_writer_output_is_standard_and_reproducible(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def build() -> bytes:
        out = io.BytesIO()
        writer = TarWriter(out)
        writer.add(ts.TarEntry("dir/", ts.DIR, 0o755, 1000, 1000, mtime_ns=5 * 10**9))
        r, w = os.pipe()
        os.write(w, b"data!")
        os.close(w)
        writer.add(ts.TarEntry("dir/" + "é" * 80, ts.REG, 0o4711, size=5,
                               xattrs={"user.bin": b"\xff\x00"}), r)
        os.close(r)
        writer.add(ts.TarEntry("big", ts.REG, 0o644, uid=10**8, gid=2**22))
        writer.add(ts.TarEntry("dev", ts.BLK, 0o600, devmajor=8, devminor=1))
        digest, size = writer.close()
        assert size == len(out.getvalue())
        assert digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
        return out.getvalue()

    first, second = build(), build()
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == ["dir", "dir/" + "é" * 80, "big", "dev"]
        assert members[1].mode == 0o4711 and tf.extractfile(members[1]).read() == b"data!"
        assert members[1].pax_headers["SCHILY.xattr.user.bin"].encode(
            "utf-8", "surrogateescape") == b"\xff\x00"
        assert (members[2].uid, members[2].gid) == (10**8, 2**22)
        assert (members[0].uname, members[0].gname, members[0].uid) == ("", "", 1000)
    entries, _ = read_all(first)
    assert entries[1][0].xattrs == {"user.bin": b"\xff\x00"}
    if shutil.which("tar"):
        path = tmp_path / "t.tar"
        path.write_bytes(first)
        listing = subprocess.run(["tar", "tvf", str(path)], capture_output=True, text=True,
                                 check=True).stdout
        assert "dir/" in listing and "8,1" in listing
        path.unlink()


def test_header_is_plain_ustar_when_possible() -> None:
    header = encode_header(ts.TarEntry("short", ts.REG, 0o644, mtime_ns=10**9))
    assert len(header) == 512 and header[257:265] == b"ustar\x0000"
