"""A small DNS message codec (RFC 1035, plus the EDNS0 OPT pseudo-record of RFC 6891).

``parse`` reads a message, following compression pointers (with loop protection) and expanding
the names inside NS/CNAME/PTR/MX/SOA/SRV data, so every ``Record.data`` is uncompressed wire
data independent of the message it came from. ``encode`` writes a message, compressing owner
names and the names inside those record types; with ``max_size`` it drops records from the end
and sets TC when the message does not fit (a UDP answer without EDNS must fit in 512 bytes).
Names are ``str`` (labels decoded as Latin-1, so any byte survives), without the trailing dot.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
OPCODE_QUERY = 0
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
UDP_LIMIT = 512
_HEADER = struct.Struct("!HHHHHH")
_MAX_POINTERS = 64


class DnsFormatError(ValueError):
    """The bytes are not a well-formed DNS message."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int = A
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    """A resource record; ``data`` is its RDATA in uncompressed wire form."""

    name: str
    rtype: int
    rclass: int = CLASS_IN
    ttl: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class Message:
    id: int
    flags: int = 0
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()

    @property
    def is_response(self) -> bool:
        return bool(self.flags & QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TC)

    def edns_payload(self) -> int | None:
        """The requester's UDP payload size from its OPT record, None without EDNS."""
        for record in self.additional:
            if record.rtype == OPT:
                return max(record.rclass, UDP_LIMIT)
        return None


# -- names -----------------------------------------------------------------------------

def name_key(name: str) -> str:
    """Names compare case-insensitively and without the trailing dot."""
    return name.rstrip(".").lower()


def _labels(name: str) -> list[bytes]:
    name = name.rstrip(".")
    if not name:
        return []
    labels = [label.encode("latin-1") for label in name.split(".")]
    if any(not label or len(label) > 63 for label in labels):
        raise DnsFormatError(f"invalid name: {name!r}")
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise DnsFormatError(f"name too long: {name[:40]!r}…")
    return labels


def encode_name(name: str, out: bytearray, offsets: dict[str, int] | None = None) -> None:
    """Append ``name``; with ``offsets``, reuse and remember suffixes (compression)."""
    labels = _labels(name)
    for i in range(len(labels)):
        suffix = b".".join(labels[i:]).decode("latin-1").lower()
        if offsets is not None and suffix in offsets:
            out += struct.pack("!H", 0xC000 | offsets[suffix])
            return
        if offsets is not None and len(out) < 0x4000:
            offsets[suffix] = len(out)
        out.append(len(labels[i]))
        out += labels[i]
    out.append(0)


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it (pointers followed, not counted)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(data):
            raise DnsFormatError("name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsFormatError("truncated compression pointer")
            jumps += 1
            if jumps > _MAX_POINTERS:
                raise DnsFormatError("compression pointer loop")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise DnsFormatError("unsupported label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(data):
            raise DnsFormatError("label runs past the end of the message")
        labels.append(data[offset:offset + length].decode("latin-1"))
        offset += length
    name = ".".join(labels)
    if len(name) > 254:
        raise DnsFormatError("name too long")
    return name, (end if end >= 0 else offset)


# -- record data -----------------------------------------------------------------------

# Where names sit in RDATA: (fixed bytes before the name, number of names, fixed bytes after).
_NAMED_RDATA = {NS: (0, 1, 0), CNAME: (0, 1, 0), PTR: (0, 1, 0), MX: (2, 1, 0),
                SRV: (6, 1, 0), SOA: (0, 2, 20)}


def _expand_rdata(data: bytes, offset: int, length: int, rtype: int) -> bytes:
    end = offset + length
    layout = _NAMED_RDATA.get(rtype)
    if layout is None:
        return data[offset:end]
    before, names, after = layout
    out = bytearray(data[offset:offset + before])
    pos = offset + before
    for _ in range(names):
        name, pos = decode_name(data, pos)
        encode_name(name, out)
    out += data[pos:pos + after]
    if pos + after != end:
        raise DnsFormatError(f"bad RDATA length for type {rtype}")
    return bytes(out)


def _compress_rdata(record: Record, out: bytearray, offsets: dict[str, int]) -> None:
    layout = _NAMED_RDATA.get(record.rtype)
    if layout is None or record.rtype not in (NS, CNAME, PTR, MX):  # RFC 3597: only these
        out += record.data
        return
    before = layout[0]
    out += record.data[:before]
    name, _ = decode_name(record.data, before)
    encode_name(name, out, offsets)


def a_data(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def aaaa_data(ip: str) -> bytes:
    return ipaddress.IPv6Address(ip).packed


def name_data(name: str) -> bytes:
    """RDATA of NS/CNAME/PTR records."""
    out = bytearray()
    encode_name(name, out)
    return bytes(out)


def address_of(record: Record) -> str:
    """The address in an A or AAAA record."""
    if record.rtype == A:
        return str(ipaddress.IPv4Address(record.data))
    return str(ipaddress.IPv6Address(record.data))


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def reverse_address(name: str) -> str | None:
    """The address an ``…in-addr.arpa`` or ``…ip6.arpa`` name stands for, else None."""
    key = name_key(name)
    try:
        if key.endswith(".in-addr.arpa"):
            parts = key[: -len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        elif key.endswith(".ip6.arpa"):
            nibbles = key[: -len(".ip6.arpa")].split(".")
            if len(nibbles) == 32 and all(len(n) == 1 for n in nibbles):
                return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    except ValueError:
        return None
    return None


# -- messages --------------------------------------------------------------------------

def parse(data: bytes) -> Message:
    if len(data) < _HEADER.size:
        raise DnsFormatError("message shorter than its header")
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    offset = _HEADER.size
    questions = []
    for _ in range(qd):
        name, offset = decode_name(data, offset)
        if offset + 4 > len(data):
            raise DnsFormatError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        questions.append(Question(name, qtype, qclass))
    sections: list[tuple[Record, ...]] = []
    for count in (an, ns, ar):
        records, offset = _parse_records(data, offset, count)
        sections.append(records)
    return Message(ident, flags, tuple(questions), *sections)


def _parse_records(data: bytes, offset: int, count: int) -> tuple[tuple[Record, ...], int]:
    records = []
    for _ in range(count):
        name, offset = decode_name(data, offset)
        if offset + 10 > len(data):
            raise DnsFormatError("truncated resource record")
        rtype, rclass, ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if offset + length > len(data):
            raise DnsFormatError("RDATA runs past the end of the message")
        records.append(Record(name, rtype, rclass, ttl, _expand_rdata(data, offset, length, rtype)))
        offset += length
    return tuple(records), offset


def peek_id(data: bytes) -> int | None:
    return struct.unpack_from("!H", data)[0] if len(data) >= 2 else None


def encode(message: Message, max_size: int | None = None) -> bytes:
    """The wire form; over ``max_size`` records are dropped from the end and TC is set."""
    out = _encode(message)
    if max_size is None or len(out) <= max_size:
        return out
    answers, authority = list(message.answers), list(message.authority)
    while len(out) > max_size and (answers or authority):
        (authority or answers).pop()
        out = _encode(replace(message, flags=message.flags | TC, answers=tuple(answers),
                              authority=tuple(authority)))
    return out


def _encode(message: Message) -> bytes:
    out = bytearray(_HEADER.pack(message.id, message.flags, len(message.questions),
                                 len(message.answers), len(message.authority),
                                 len(message.additional)))
    offsets: dict[str, int] = {}
    for question in message.questions:
        encode_name(question.name, out, offsets)
        out += struct.pack("!HH", question.qtype, question.qclass)
    for record in (*message.answers, *message.authority, *message.additional):
        encode_name(record.name, out, offsets)
        out += struct.pack("!HHI", record.rtype, record.rclass, record.ttl)
        length_at = len(out)
        out += b"\0\0"
        _compress_rdata(record, out, offsets)
        struct.pack_into("!H", out, length_at, len(out) - length_at - 2)
    return bytes(out)


def response(query: Message, rcode: int = NOERROR, answers: tuple[Record, ...] = (),
             authoritative: bool = False) -> Message:
    """A reply to ``query``: same id, opcode, RD and question, RA set."""
    flags = QR | RA | (query.flags & (0x7800 | RD)) | (rcode & 0xF)
    if authoritative:
        flags |= AA
    return Message(query.id, flags, query.questions, answers)
