"""The iptables commands ``host.firewall`` issues, checked on the recording fake (no root)."""
from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.host.firewall import BridgeRules, FakeIptables, Firewall, PortRule

P = "DOCKYARD-t1"
BR_A = BridgeRules("dyt1-aaaa", "172.31.0.0/24")
BR_B = BridgeRules("dyt1-bbbb", "172.31.1.0/24")
WEB = PortRule("dyt1-aaaa", "172.31.0.2", 80, 8080)


@pytest.fixture
def fake() -> FakeIptables:
    return FakeIptables()


@pytest.fixture
def fw(fake: FakeIptables) -> Firewall:
    return Firewall(P, fake)


def _changes(fake: FakeIptables) -> list[str]:
    """The commands that modified something (checks and listings left out)."""
    return [" ".join(c) for c in fake.calls
            if not {"-C", "-S", "-L"} & set(c)]


def test_setup_creates_chains_then_inserts_jumps(fw: Firewall, fake: FakeIptables) -> None:
    fw.setup()
    assert _changes(fake) == [
        f"-t nat -N {P}",
        f"-t nat -N {P}-POSTROUTING",
        f"-t filter -N {P}-ISOLATION",
        f"-t filter -N {P}-ISOLATION-2",
        f"-t filter -N {P}-FORWARD",
        f"-t filter -N {P}",
        f"-t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL -j {P}",
        f"-t nat -I OUTPUT 1 -m addrtype --dst-type LOCAL -j {P}",
        f"-t nat -I POSTROUTING 1 -j {P}-POSTROUTING",
        f"-t filter -I FORWARD 1 -j {P}-FORWARD",
        f"-t filter -I FORWARD 1 -j {P}-ISOLATION",
    ]
    # every change was preceded by its check
    assert fake.calls[0] == ["-t", "nat", "-n", "-L", P]
    assert ["-t", "filter", "-C", "FORWARD", "-j", f"{P}-ISOLATION"] in fake.calls


def test_setup_is_idempotent(fw: Firewall, fake: FakeIptables) -> None:
    fw.setup()
    fake.calls.clear()
    fw.setup()
    assert _changes(fake) == []
    assert fw.rules().count(f"filter -A FORWARD -j {P}-ISOLATION") == 1


def test_isolation_runs_before_forward_accepts(fw: Firewall) -> None:
    fw.setup()
    forward = [r for r in fw.rules() if r.startswith("filter -A FORWARD ")]
    assert forward == [f"filter -A FORWARD -j {P}-ISOLATION", f"filter -A FORWARD -j {P}-FORWARD"]


def test_bridge_rules_exact_argv(fw: Firewall, fake: FakeIptables) -> None:
    fw.setup()
    fake.calls.clear()
    fw.add_bridge(BR_A)
    br = BR_A.bridge
    assert _changes(fake) == [
        f"-t nat -A {P}-POSTROUTING -s 172.31.0.0/24 ! -o {br} -j MASQUERADE",
        f"-t nat -A {P}-POSTROUTING -o {br} -m addrtype --src-type LOCAL -j MASQUERADE",
        f"-t filter -A {P}-ISOLATION -i {br} ! -o {br} -j {P}-ISOLATION-2",
        f"-t filter -A {P}-ISOLATION-2 -o {br} -j DROP",
        f"-t filter -A {P}-FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-t filter -A {P}-FORWARD -o {br} -j {P}",
        f"-t filter -A {P}-FORWARD -i {br} ! -o {br} -j ACCEPT",
        f"-t filter -A {P}-FORWARD -i {br} -o {br} -j ACCEPT",
    ]
    fake.calls.clear()
    fw.add_bridge(BR_A)  # again: only checks
    assert _changes(fake) == []


def test_internal_network_has_no_masquerade_and_drops_both_ways(fw: Firewall) -> None:
    fw.setup()
    fw.add_bridge(BridgeRules("dyt1-int", "172.31.9.0/24", internal=True, icc=False))
    rules = fw.rules()
    assert not any("172.31.9.0/24" in r for r in rules)
    assert f"filter -A {P}-ISOLATION -i dyt1-int ! -o dyt1-int -j DROP" in rules
    assert f"filter -A {P}-ISOLATION ! -i dyt1-int -o dyt1-int -j DROP" in rules
    assert f"filter -A {P}-FORWARD -i dyt1-int -o dyt1-int -j DROP" in rules
    assert f"filter -A {P}-FORWARD -i dyt1-int ! -o dyt1-int -j ACCEPT" not in rules


def test_remove_bridge_leaves_the_other_bridge(fw: Firewall) -> None:
    fw.setup()
    fw.add_bridge(BR_A)
    only_b = Firewall(P, FakeIptables())
    only_b.setup()
    only_b.add_bridge(BR_B)
    fw.add_bridge(BR_B)
    fw.remove_bridge(BR_A)
    assert fw.rules() == only_b.rules()


def test_published_port_argv(fw: Firewall, fake: FakeIptables) -> None:
    fw.setup()
    fw.add_bridge(BR_A)
    fake.calls.clear()
    fw.add_port(WEB)
    fw.add_port(PortRule("dyt1-aaaa", "172.31.0.3", 53, 5353, "udp", "127.0.0.1"))
    assert _changes(fake) == [
        f"-t nat -A {P} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.31.0.2:80",
        (f"-t nat -A {P}-POSTROUTING -s 172.31.0.2/32 -d 172.31.0.2/32 -p tcp -m tcp "
         "--dport 80 -j MASQUERADE"),
        (f"-t filter -A {P} -d 172.31.0.2/32 ! -i dyt1-aaaa -o dyt1-aaaa -p tcp -m tcp "
         "--dport 80 -j ACCEPT"),
        (f"-t nat -A {P} -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT "
         "--to-destination 172.31.0.3:53"),
        (f"-t nat -A {P}-POSTROUTING -s 172.31.0.3/32 -d 172.31.0.3/32 -p udp -m udp "
         "--dport 53 -j MASQUERADE"),
        (f"-t filter -A {P} -d 172.31.0.3/32 ! -i dyt1-aaaa -o dyt1-aaaa -p udp -m udp "
         "--dport 53 -j ACCEPT"),
    ]
    fw.remove_port(WEB)
    assert not any("8080" in r or "172.31.0.2/32" in r for r in fw.rules())


def test_bad_proto_is_refused(fw: Firewall) -> None:
    with pytest.raises(InvalidArgument):
        fw.add_port(PortRule("dyt1-aaaa", "172.31.0.2", 80, 8080, "icmp"))


def test_teardown_removes_everything_including_duplicates(fw: Firewall,
                                                          fake: FakeIptables) -> None:
    fw.setup()
    fw.add_bridge(BR_A)
    fw.add_bridge(BR_B)
    fw.add_port(WEB)
    fake(["-t", "filter", "-A", "FORWARD", "-j", f"{P}-FORWARD"])  # a duplicate jump
    fw.teardown()
    assert fake.empty()
    assert fw.rules() == []


def test_teardown_keeps_foreign_rules_and_other_prefixes(fake: FakeIptables) -> None:
    fake(["-t", "filter", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "ACCEPT"])
    other = Firewall("DOCKYARD-t2", fake)
    other.setup()
    mine = Firewall(P, fake)
    mine.setup()
    mine.add_bridge(BR_A)
    before = other.rules()
    mine.teardown()
    assert other.rules() == before
    assert ("-s", "10.0.0.0/8", "-j", "ACCEPT") in fake.tables["filter"]["FORWARD"]
    other.teardown()
    assert fake.tables["filter"]["FORWARD"] == [("-s", "10.0.0.0/8", "-j", "ACCEPT")]


def test_teardown_without_setup_does_nothing(fw: Firewall, fake: FakeIptables) -> None:
    fw.teardown()
    assert _changes(fake) == []


@pytest.mark.parametrize("prefix", ["docker", "DOCKER", "DOCKYARD-0123456789", "DOCKYARD x", ""])
def test_prefix_must_be_ours_and_short(prefix: str) -> None:
    with pytest.raises(InvalidArgument):
        Firewall(prefix, FakeIptables())


def test_longest_prefix_fits_iptables_chain_names() -> None:
    fw = Firewall("DOCKYARD-abcdef1", FakeIptables())
    names = [n for chains in fw.chains().values() for n in chains]
    assert max(len(n) for n in names) <= 28
