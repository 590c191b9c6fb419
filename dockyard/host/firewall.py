"""iptables rules for bridge networks, kept in dockyard's own chains only.

Per daemon a chain prefix ``P`` (``DOCKYARD`` by default, ``DOCKYARD-<short>`` for test
daemons; at most 16 characters so every chain name fits iptables' 28). Chains::

    nat    P               DNAT of published ports        <- PREROUTING, OUTPUT (dst LOCAL)
    nat    P-POSTROUTING   masquerade, hairpin, localhost  <- POSTROUTING
    filter P-ISOLATION     stage 1: leaving a bridge for another one  <- FORWARD (first)
    filter P-ISOLATION-2   stage 2: ... entering one of our bridges -> DROP
    filter P-FORWARD       established/outbound/inter-container accept <- FORWARD (second)
    filter P               accept DNAT-ed traffic to published ports   <- P-FORWARD

Built-in chains only get the jump rules ``setup`` inserts and ``teardown`` removes; policies
and foreign rules are never touched. Rules are written in ``iptables -S``'s canonical form,
so what ``rules()`` prints is what was added. Debian's ``iptables`` (nft backend) is fine.

Every command goes through a ``Runner``: ``SystemRunner`` executes ``iptables -w``;
``FakeIptables`` models the tables in memory and records every argv (unit tests, dry runs).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Protocol

from dockyard.errors import Internal, InvalidArgument

MAX_PREFIX = 16
_PREFIX_RE = re.compile(r"^DOCKYARD[A-Za-z0-9_-]*$")
TABLES = ("filter", "nat")


class Runner(Protocol):
    def __call__(self, argv: list[str]) -> tuple[int, str]:
        """Run one iptables command; (exit status, stdout + stderr)."""


class SystemRunner:
    def __init__(self, binary: str = "iptables") -> None:
        self.binary = binary

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        try:
            done = subprocess.run([self.binary, "-w", *argv], capture_output=True, text=True,
                                  check=False)
        except FileNotFoundError as exc:
            raise Internal(f"{self.binary} not found") from exc
        return done.returncode, done.stdout + done.stderr


@dataclass(frozen=True)
class BridgeRules:
    bridge: str
    subnet: str  # "172.31.0.0/24"
    internal: bool = False
    icc: bool = True  # inter-container communication on the same bridge
    masquerade: bool = True


@dataclass(frozen=True)
class PortRule:
    bridge: str
    container_ip: str
    container_port: int
    host_port: int
    proto: str = "tcp"  # tcp | udp | sctp
    host_ip: str = ""  # "" or "0.0.0.0": every local address


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    spec: tuple[str, ...]

    def text(self) -> str:
        return " ".join(("-A", self.chain, *self.spec))


class Firewall:
    def __init__(self, prefix: str = "DOCKYARD", runner: Runner | None = None) -> None:
        if len(prefix) > MAX_PREFIX or not _PREFIX_RE.match(prefix):
            raise InvalidArgument(f"invalid firewall chain prefix {prefix!r}: DOCKYARD… "
                                  f"of at most {MAX_PREFIX} characters")
        self.prefix = prefix
        self.run = runner or SystemRunner()

    # -- chain names -----------------------------------------------------------------------

    @property
    def nat_ports(self) -> str:
        return self.prefix

    @property
    def nat_post(self) -> str:
        return f"{self.prefix}-POSTROUTING"

    @property
    def isolation(self) -> str:
        return f"{self.prefix}-ISOLATION"

    @property
    def isolation2(self) -> str:
        return f"{self.prefix}-ISOLATION-2"

    @property
    def forward(self) -> str:
        return f"{self.prefix}-FORWARD"

    @property
    def filter_ports(self) -> str:
        return self.prefix

    def chains(self) -> dict[str, tuple[str, ...]]:
        return {"nat": (self.nat_ports, self.nat_post),
                "filter": (self.isolation, self.isolation2, self.forward, self.filter_ports)}

    def jumps(self) -> list[Rule]:
        """Rules in built-in chains; inserted in this order at position 1."""
        local = ("-m", "addrtype", "--dst-type", "LOCAL")
        return [Rule("nat", "PREROUTING", (*local, "-j", self.nat_ports)),
                Rule("nat", "OUTPUT", (*local, "-j", self.nat_ports)),
                Rule("nat", "POSTROUTING", ("-j", self.nat_post)),
                Rule("filter", "FORWARD", ("-j", self.forward)),
                Rule("filter", "FORWARD", ("-j", self.isolation))]

    # -- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        """Create our chains and jump to them (idempotent)."""
        for table, names in self.chains().items():
            for name in names:
                if not self._ok(["-t", table, "-n", "-L", name]):
                    self._must(["-t", table, "-N", name])
        for rule in self.jumps():
            if not self._has(rule):
                self._must(["-t", rule.table, "-I", rule.chain, "1", *rule.spec])

    def teardown(self) -> None:
        """Remove every jump rule and chain of this prefix (also duplicates and leftovers)."""
        ours = {name for names in self.chains().values() for name in names}
        for table in TABLES:
            for line in self._list(table):
                words = line.split()
                if words[:1] == ["-A"] and words[1] not in ours and _targets(words, ours):
                    self._must(["-t", table, "-D", *words[1:]])
        for table, names in self.chains().items():
            for name in names:
                if self._ok(["-t", table, "-n", "-L", name]):
                    self._must(["-t", table, "-F", name])
            for name in names:
                if self._ok(["-t", table, "-n", "-L", name]):
                    self._must(["-t", table, "-X", name])

    def rules(self) -> list[str]:
        """Our chains and jumps as ``<table> <iptables -S line>`` (for tests and debugging)."""
        ours = {name for names in self.chains().values() for name in names}
        found: list[str] = []
        for table in TABLES:
            for line in self._list(table):
                words = line.split()
                if len(words) >= 2 and (words[1] in ours or _targets(words, ours)):
                    found.append(f"{table} {line}")
        return found

    # -- bridges ---------------------------------------------------------------------------

    def bridge_rules(self, net: BridgeRules) -> list[Rule]:
        br = net.bridge
        rules: list[Rule] = []
        if net.masquerade and not net.internal:
            rules.append(Rule("nat", self.nat_post,
                              ("-s", net.subnet, "!", "-o", br, "-j", "MASQUERADE")))
        rules.append(Rule("nat", self.nat_post, ("-o", br, "-m", "addrtype", "--src-type",
                                                  "LOCAL", "-j", "MASQUERADE")))
        if net.internal:
            rules += [Rule("filter", self.isolation, ("-i", br, "!", "-o", br, "-j", "DROP")),
                      Rule("filter", self.isolation, ("!", "-i", br, "-o", br, "-j", "DROP"))]
        else:
            rules += [Rule("filter", self.isolation,
                           ("-i", br, "!", "-o", br, "-j", self.isolation2)),
                      Rule("filter", self.isolation2, ("-o", br, "-j", "DROP"))]
        rules += [Rule("filter", self.forward, ("-o", br, "-m", "conntrack", "--ctstate",
                                                "RELATED,ESTABLISHED", "-j", "ACCEPT")),
                  Rule("filter", self.forward, ("-o", br, "-j", self.filter_ports))]
        if not net.internal:
            rules.append(Rule("filter", self.forward, ("-i", br, "!", "-o", br, "-j", "ACCEPT")))
        rules.append(Rule("filter", self.forward,
                          ("-i", br, "-o", br, "-j", "ACCEPT" if net.icc else "DROP")))
        return rules

    def add_bridge(self, net: BridgeRules) -> None:
        self._add_all(self.bridge_rules(net))

    def remove_bridge(self, net: BridgeRules) -> None:
        self._delete_all(self.bridge_rules(net))

    # -- published ports -------------------------------------------------------------------

    def port_rules(self, port: PortRule) -> list[Rule]:
        if port.proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto '{port.proto}'")
        proto = ("-p", port.proto, "-m", port.proto)
        dest = f"{port.container_ip}:{port.container_port}"
        host = () if port.host_ip in ("", "0.0.0.0") else ("-d", f"{port.host_ip}/32")
        cip = f"{port.container_ip}/32"
        return [
            Rule("nat", self.nat_ports,
                 (*host, *proto, "--dport", str(port.host_port), "-j", "DNAT",
                  "--to-destination", dest)),
            Rule("nat", self.nat_post,  # hairpin: a container reaching itself via the host port
                 ("-s", cip, "-d", cip, *proto, "--dport", str(port.container_port),
                  "-j", "MASQUERADE")),
            Rule("filter", self.filter_ports,
                 ("-d", cip, "!", "-i", port.bridge, "-o", port.bridge, *proto,
                  "--dport", str(port.container_port), "-j", "ACCEPT")),
        ]

    def add_port(self, port: PortRule) -> None:
        self._add_all(self.port_rules(port))

    def remove_port(self, port: PortRule) -> None:
        self._delete_all(self.port_rules(port))

    # -- plumbing --------------------------------------------------------------------------

    def _add_all(self, rules: list[Rule]) -> None:
        for rule in rules:
            if not self._has(rule):
                self._must(["-t", rule.table, "-A", rule.chain, *rule.spec])

    def _delete_all(self, rules: list[Rule]) -> None:
        for rule in rules:
            while self._has(rule):
                self._must(["-t", rule.table, "-D", rule.chain, *rule.spec])

    def _has(self, rule: Rule) -> bool:
        return self._ok(["-t", rule.table, "-C", rule.chain, *rule.spec])

    def _list(self, table: str) -> list[str]:
        status, out = self.run(["-t", table, "-S"])
        if status != 0:
            raise Internal(f"iptables -t {table} -S: {out.strip()}")
        return [line for line in out.splitlines() if line]

    def _ok(self, argv: list[str]) -> bool:
        return self.run(argv)[0] == 0

    def _must(self, argv: list[str]) -> None:
        status, out = self.run(argv)
        if status != 0:
            raise Internal(f"iptables {' '.join(argv)}: {out.strip()}")


def _targets(words: list[str], chains: set[str]) -> bool:
    """True if an ``-S`` line jumps (``-j``/``-g``) to one of ``chains``."""
    return any(w in ("-j", "-g") and i + 1 < len(words) and words[i + 1] in chains
               for i, w in enumerate(words))


_BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"),
            "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}


class FakeIptables:
    """An in-memory iptables (filter and nat) recording every argv: the dry-run runner.

    Models what ``Firewall`` uses: -N -X -F -A -I -D -C -S and ``-n -L``, with iptables'
    exit statuses; rules are compared as written (``Firewall`` writes canonical forms, which
    the root e2e test checks against the real ``iptables -S``).
    """

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.tables: dict[str, dict[str, list[tuple[str, ...]]]] = {
            t: {c: [] for c in chains} for t, chains in _BUILTIN.items()}

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        table, rest = ("filter", argv) if argv[:1] != ["-t"] else (argv[1], argv[2:])
        chains = self.tables[table]
        if rest[:2] == ["-n", "-L"]:
            return (0, "") if rest[2] in chains else (1, "No chain/target/match by that name.")
        op, args = rest[0], rest[1:]
        if op == "-S":
            return 0, "\n".join(self._dump(table)) + "\n"
        name, spec = args[0], tuple(args[1:])
        if op == "-N":
            if name in chains:
                return 1, "iptables: Chain already exists."
            chains[name] = []
            return 0, ""
        if name not in chains:
            return 1, "iptables: No chain/target/match by that name."
        return self._on_chain(table, op, name, spec)

    def _on_chain(self, table: str, op: str, name: str, spec: tuple[str, ...]) -> tuple[int, str]:
        chains = self.tables[table]
        rules = chains[name]
        if op == "-X":
            referenced = any(_targets(list(r), {name}) for rs in chains.values() for r in rs)
            if rules or referenced or name in _BUILTIN[table]:
                return 1, "iptables: Directory not empty."
            del chains[name]
        elif op == "-F":
            rules.clear()
        elif op == "-A":
            rules.append(spec)
        elif op == "-I":
            position = int(spec[0]) if spec and spec[0].isdigit() else 1
            rules.insert(position - 1, spec[1:] if spec and spec[0].isdigit() else spec)
        elif op in ("-D", "-C"):
            if spec not in rules:
                return 1, "iptables: Bad rule (does a matching rule exist in that chain?)."
            if op == "-D":
                rules.remove(spec)
        else:
            return 2, f"unsupported {op}"
        return 0, ""

    def _dump(self, table: str) -> list[str]:
        chains = self.tables[table]
        lines = [f"-P {c} ACCEPT" for c in _BUILTIN[table]]
        user = sorted(c for c in chains if c not in _BUILTIN[table])
        lines += [f"-N {c}" for c in user]
        for name in (*_BUILTIN[table], *user):
            lines += [" ".join(("-A", name, *r)) for r in chains[name]]
        return lines

    def empty(self) -> bool:
        """True when only the built-in chains exist and they hold no rules."""
        return all(set(chains) == set(_BUILTIN[t]) and not any(chains.values())
                   for t, chains in self.tables.items())
