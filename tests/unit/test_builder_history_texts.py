"""The history texts of metadata steps and the Go formatting behind them (no daemon)."""
from __future__ import annotations

import pytest

from dockyard.builder import stepconfig
from dockyard.builder.gofmt import go_quote_rune, go_quoted_list
from dockyard.util.timefmt import go_duration
from dockyard.builder.instructions import parse_stages
from dockyard.builder.shell import expand_word, expand_words
from dockyard.errors import InvalidArgument


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (2_000_000, "2ms"), (1_000_000_000, "1s"),
    (1_250_000_000, "1.25s"), (90_000_000_000, "1m30s"), (300_000_000_000, "5m0s"),
    (3_600_000_000_000, "1h0m0s"), (3_723_000_000_000, "1h2m3s"), (-5_000_000_000, "-5s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("number", "text"), [
    (0, "'\\x00'"), (3, "'\\x03'"), (9, "'\\t'"), (10, "'\\n'"), (65, "'A'"), (39, "'\\''"),
    (34, "'\"'"), (92, "'\\\\'"), (127, "'\\x7f'"),
])
def test_go_quote_rune(number: int, text: str) -> None:
    assert go_quote_rune(number) == text


def test_go_quoted_list() -> None:
    assert go_quoted_list([]) == "[]"
    assert go_quoted_list(["nginx", "-g", "daemon off;"]) == '["nginx" "-g" "daemon off;"]'
    assert go_quoted_list(['say "hi"', "tab\there"]) == '["say \\"hi\\"" "tab\\there"]'


def history_of(dockerfile: str, env: dict[str, str] | None = None) -> list[str]:
    """The created_by of each metadata instruction of the one stage, in order."""
    config: dict[str, object] = {}
    out = []
    inherited = True
    for inst in parse_stages("FROM x\n" + dockerfile).stages[0].instructions:
        values = dict(env or {}) | stepconfig.env_dict(config)
        config, text = stepconfig.apply(inst, config, lambda w: expand_word(w, values),
                                        lambda w: expand_words(w, values), inherited)
        out.append(text)
    return out


def test_metadata_history_texts() -> None:
    assert history_of(
        'CMD ["sh"]\nCMD echo "a b"\nENTRYPOINT ["x", "y z"]\nENTRYPOINT []\n'
        "ENV A=1 B=$A\nLABEL k=v \"x y\"=z\nUSER nobody\nSTOPSIGNAL SIGTERM\n"
        "VOLUME /a /b\nVOLUME [\"/c\"]\nEXPOSE 80 443/udp 9000-9001\nWORKDIR /w\nWORKDIR sub\n"
        "MAINTAINER me <me@x>\nONBUILD RUN echo hi\n"
        "HEALTHCHECK NONE\nHEALTHCHECK --interval=30s --timeout=5s --start-period=1s "
        "--start-interval=2s --retries=5 CMD curl -f http://x/\n"
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nCMD run it\nWORKDIR /after\n') == [
        '/bin/sh -c #(nop)  CMD ["sh"]',
        '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \\"a b\\""]',
        '/bin/sh -c #(nop)  ENTRYPOINT ["x" "y z"]',
        "/bin/sh -c #(nop)  ENTRYPOINT []",
        "/bin/sh -c #(nop)  ENV A=1 B=",   # $A: the value before this ENV, as Docker
        "/bin/sh -c #(nop)  LABEL k=v x y=z",
        "/bin/sh -c #(nop)  USER nobody",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
        "/bin/sh -c #(nop)  VOLUME [/a /b]",
        "/bin/sh -c #(nop)  VOLUME [/c]",
        "/bin/sh -c #(nop)  EXPOSE 443/udp 80 9000-9001",
        "/bin/sh -c #(nop) WORKDIR /w",
        "/bin/sh -c #(nop) WORKDIR /w/sub",
        "/bin/sh -c #(nop)  MAINTAINER me <me@x>",
        "/bin/sh -c #(nop)  ONBUILD RUN echo hi",
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}",
        '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/"] "30s" "5s" '
        "\"1s\" \"2s\" '\\x05'}",
        "/bin/bash -o pipefail -c #(nop)  SHELL [/bin/bash -o pipefail -c]",
        '/bin/bash -o pipefail -c #(nop)  CMD ["/bin/bash" "-o" "pipefail" "-c" "run it"]',
        "/bin/bash -o pipefail -c #(nop) WORKDIR /after",
    ]


def test_exposed_ports_and_refusals() -> None:
    assert stepconfig.exposed_ports("80") == ["80/tcp"]
    assert stepconfig.exposed_ports("53/UDP") == ["53/udp"]
    assert stepconfig.exposed_ports("7000-7002/sctp") == ["7000/sctp", "7001/sctp", "7002/sctp"]
    assert stepconfig.exposed_ports("127.0.0.1:8080:80") == ["80/tcp"]
    with pytest.raises(InvalidArgument, match="invalid proto: foo"):
        stepconfig.exposed_ports("80/foo")
    with pytest.raises(InvalidArgument, match="invalid containerPort: http"):
        stepconfig.exposed_ports("http")


def test_arg_comment_keeps_defaults_as_written() -> None:
    assert stepconfig.arg_comment([("A", "1"), ("B", None), ("C", "")]) == "ARG A=1 B C="
    assert stepconfig.nop({}, stepconfig.arg_comment([("V", "x")])) == \
        "/bin/sh -c #(nop)  ARG V=x"
