"""The embedded DNS server's pieces without sockets: codec, names registry, local answers."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dockyard.network import dnscodec as c
from dockyard.network.dns import DnsServer
from dockyard.network.dnscodec import DnsFormatError, Message, Question, Record
from dockyard.network.dnsnames import DnsRegistry
from dockyard.network.dnsupstream import host_upstreams, parse_resolv_conf

# A reply as a resolver sends it: www.example.com CNAME example.com, example.com A 93.184.216.34,
# every name after the question compressed.
WIRE_REPLY = bytes.fromhex(
    "abcd81800001000200000000"
    "03777777076578616d706c6503636f6d0000010001"  # question www.example.com A IN
    "c00c000500010000012c0002c010"  # www.example.com CNAME → pointer to example.com
    "c010000100010000012c00045db8d822"  # example.com A 93.184.216.34
)


def test_parse_compressed_reply() -> None:
    msg = c.parse(WIRE_REPLY)
    assert (msg.id, msg.is_response, msg.rcode, msg.opcode) == (0xABCD, True, c.NOERROR, 0)
    assert msg.questions == (Question("www.example.com", c.A),)
    cname, a = msg.answers
    assert (cname.name, cname.rtype, cname.ttl) == ("www.example.com", c.CNAME, 300)
    assert c.decode_name(cname.data, 0)[0] == "example.com"  # expanded, not a pointer
    assert (a.name, c.address_of(a)) == ("example.com", "93.184.216.34")


def test_round_trip_and_compression() -> None:
    query = Message(7, c.RD, (Question("web.mynet", c.A),))
    reply = c.response(query, c.NOERROR, (
        Record("web.mynet", c.A, c.CLASS_IN, 600, c.a_data("172.18.0.2")),
        Record("web.mynet", c.AAAA, c.CLASS_IN, 600, c.aaaa_data("fd00::2")),
        Record("2.0.18.172.in-addr.arpa", c.PTR, c.CLASS_IN, 600, c.name_data("web.mynet")),
    ), authoritative=True)
    wire = c.encode(reply)
    assert wire.count(b"\x03web\x05mynet") == 1  # later occurrences are pointers
    back = c.parse(wire)
    assert back == reply
    assert back.flags & c.AA and back.flags & c.RA and back.flags & c.RD


def test_names_case_and_trailing_dot() -> None:
    assert c.name_key("Web.MyNet.") == "web.mynet"
    out = bytearray()
    c.encode_name("a.b.", out)
    assert bytes(out) == b"\x01a\x01b\x00"
    assert c.decode_name(b"\x00", 0) == ("", 1)


@pytest.mark.parametrize("bad", [
    b"\x00\x01",  # shorter than a header
    bytes.fromhex("000100000001000000000000") + b"\x03www",  # name runs off the end
    bytes.fromhex("000100000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
    bytes.fromhex("000100000001000000000000") + b"\x80abc\x00\x00\x01\x00\x01",  # label type
    bytes.fromhex("000100000000000100000000") + b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x09",
])
def test_malformed_messages(bad: bytes) -> None:
    with pytest.raises(DnsFormatError):
        c.parse(bad)


def test_invalid_names_refused() -> None:
    for bad in ("a" * 64 + ".com", "a..b", ".".join(["abcdefghi"] * 30)):
        with pytest.raises(DnsFormatError):
            c.encode_name(bad, bytearray())


def test_truncation_to_udp_limit() -> None:
    query = Message(1, 0, (Question("many", c.A),))
    answers = tuple(Record("many", c.A, c.CLASS_IN, 600, c.a_data(f"10.0.{i // 250}.{i % 250}"))
                    for i in range(100))
    wire = c.encode(c.response(query, c.NOERROR, answers), max_size=c.UDP_LIMIT)
    msg = c.parse(wire)
    assert len(wire) <= c.UDP_LIMIT and msg.truncated and 0 < len(msg.answers) < 100
    full = c.parse(c.encode(c.response(query, c.NOERROR, answers), max_size=65535))
    assert not full.truncated and len(full.answers) == 100


def test_edns_payload() -> None:
    opt = Record("", c.OPT, 1232, 0, b"")
    msg = c.parse(c.encode(Message(1, 0, (Question("x", c.A),), additional=(opt,))))
    assert msg.edns_payload() == 1232
    assert Message(1).edns_payload() is None


def test_reverse_names() -> None:
    assert c.reverse_name("172.18.0.2") == "2.0.18.172.in-addr.arpa"
    assert c.reverse_address("2.0.18.172.IN-ADDR.ARPA.") == "172.18.0.2"
    assert c.reverse_address(c.reverse_name("fd00::2")) == "fd00::2"
    assert c.reverse_address("0.18.172.in-addr.arpa") is None
    assert c.reverse_address("example.com") is None


def test_resolv_conf(tmp_path: Path) -> None:
    text = "# generated\nsearch lan\nnameserver 10.0.0.1\nnameserver 127.0.0.53 # stub\n" \
           "nameserver fe80::1%eth0\nnameserver bogus\noptions ndots:0\n"
    assert parse_resolv_conf(text) == ["10.0.0.1", "127.0.0.53", "fe80::1"]
    main, systemd = tmp_path / "resolv.conf", tmp_path / "systemd.conf"
    main.write_text(text)
    assert host_upstreams(main, systemd) == [("10.0.0.1", 53), ("fe80::1", 53)]
    main.write_text("nameserver 127.0.0.53\n")
    assert host_upstreams(main, systemd) == [("127.0.0.53", 53)]  # reachable from the host
    systemd.write_text("nameserver 192.0.2.53\n")
    assert host_upstreams(main, systemd) == [("192.0.2.53", 53)]
    assert host_upstreams(tmp_path / "missing", systemd) == []


def test_registry_scopes() -> None:
    reg = DnsRegistry()
    reg.set_network_name("n1", "front")
    reg.register("n1", ["web", "www"], "172.18.0.2", container="c-web")
    reg.register("n1", ["www"], "172.18.0.3", container="c-web2")
    reg.register("n2", ["db"], "172.19.0.2", container="c-db")
    reg.register("n2", ["api"], "172.19.0.3", container="c-web")  # c-web is on n2 too
    reg.register("n1", ["database"], "172.19.0.2", viewer="c-web")  # --link db:database
    assert reg.lookup("WWW", {"n1"}) == ["172.18.0.2", "172.18.0.3"]
    assert reg.lookup("web.front", {"n1"}) == ["172.18.0.2"]
    assert reg.lookup("db", {"n1"}) == []
    networks, querier = reg.scope("n1", "172.18.0.2")
    assert (networks, querier) == ({"n1", "n2"}, "c-web")
    assert reg.lookup("db", networks, querier) == ["172.19.0.2"]
    assert reg.lookup("database", networks, querier) == ["172.19.0.2"]
    assert reg.lookup("database", {"n1"}, "c-web2") == []  # links are private
    assert reg.names_of("172.18.0.2", {"n1"}) == ["web.front"]
    reg.unregister("n1", ["www"], "172.18.0.3")
    assert reg.lookup("www", {"n1"}) == ["172.18.0.2"]
    reg.unregister("n1", ip="172.18.0.2")
    assert reg.lookup("web", {"n1"}) == []
    reg.remove_network("n2")
    assert reg.records("n2") == []


def _ask(server: DnsServer, name: str, qtype: int, source: str = "172.18.0.9") -> Message | None:
    return server.resolve(Message(42, c.RD, (Question(name, qtype),)), "n1", source)


def test_local_answers() -> None:
    server = DnsServer(upstreams=[])  # never forwards anything in this test
    server.registry.register("n1", ["web"], "172.18.0.2")
    server.registry.register("n1", ["web"], "fd00::2")
    a = _ask(server, "web", c.A)
    assert a is not None and a.rcode == c.NOERROR and a.flags & c.AA
    assert [c.address_of(r) for r in a.answers] == ["172.18.0.2"]
    assert all(r.ttl == 600 for r in a.answers)
    aaaa = _ask(server, "web", c.AAAA)
    assert aaaa is not None and [c.address_of(r) for r in aaaa.answers] == ["fd00::2"]
    mx = _ask(server, "web", c.MX)
    assert mx is not None and mx.rcode == c.NOERROR and mx.answers == ()
    missing = _ask(server, "nothere", c.A)
    assert missing is not None and missing.rcode == c.NXDOMAIN
    assert _ask(server, "example.com", c.A) is None  # for the upstreams
    ptr = _ask(server, "2.0.18.172.in-addr.arpa", c.PTR)
    assert ptr is not None and c.decode_name(ptr.answers[0].data, 0)[0] == "web"
    assert _ask(server, "9.9.9.10.in-addr.arpa", c.PTR) is None
    server.close()


def test_forward_without_upstreams_is_servfail() -> None:
    server = DnsServer(upstreams=[])
    wire = c.encode(Message(0x4242, c.RD, (Question("example.com", c.A),)))
    reply = c.parse(server.forward(wire, tcp=False))
    assert (reply.id, reply.rcode) == (0x4242, c.SERVFAIL)
    assert struct.unpack("!H", wire[:2])[0] == 0x4242
    server.close()
