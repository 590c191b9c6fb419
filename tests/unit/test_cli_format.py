"""Pure formatting: Go templates, tabwriter tables, human units, docker's row contexts."""
from __future__ import annotations

import pytest

from dockyard.cli.format import ellipsis, render, resolve, tabwrite, truncate_id
from dockyard.cli.gotemplate import Template, TemplateError
from dockyard.cli.images import DEFAULT_FORMAT as IMAGE_FORMAT
from dockyard.cli.images import HEADERS as IMAGE_HEADERS
from dockyard.cli.images import HistoryContext, image_rows
from dockyard.cli.ps import DEFAULT_FORMAT as PS_FORMAT
from dockyard.cli.ps import HEADERS as PS_HEADERS
from dockyard.cli.ps import ContainerContext, displayable_ports
from dockyard.cli.units import (
    bytes_size,
    human_duration,
    human_size,
    parse_go_duration,
    ram_in_bytes,
)

NOW = 1_800_000_000.0
CID = "716326f0940a08d98c5a106a16210c18ea0fefd1eb360d90cd04488a21f4b765"
IMAGE_ID = "sha256:74f90a72234662569ddc44ac974260c918f429f20c5c9af292bf6e7fcb956de6"


@pytest.mark.parametrize(("size", "precision", "text"), [
    (0, 4, "0B"), (999, 4, "999B"), (1000, 4, "1kB"), (4_261_544, 3, "4.26MB"),
    (1_982_464, 4, "1.982MB"), (1_982_464, 3, "1.98MB"), (22, 3, "22B"),
    (5_947_392, 4, "5.947MB"), (2_500_000_000, 3, "2.5GB"),
])
def test_human_size_is_decimal_like_go_units(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


def test_bytes_size_is_binary() -> None:
    assert bytes_size(25_275_179_008) == "23.54GiB"
    assert bytes_size(1024) == "1KiB"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (2, "2 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"),
    (3599, "59 minutes"), (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_size_and_duration_parsing() -> None:
    assert ram_in_bytes("512m") == 512 * 1024 * 1024
    assert ram_in_bytes("1g") == 1024 ** 3
    assert ram_in_bytes("100") == 100
    assert ram_in_bytes("64MB") == 64 * 1024 * 1024
    with pytest.raises(ValueError):
        ram_in_bytes("abc")
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_go_duration("10")


def test_tabwriter_matches_go() -> None:
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tweb\n"
    assert tabwrite(text) == ("CONTAINER ID   IMAGE            NAMES\n"
                              "abc            busybox:latest   web\n")


def test_tabwriter_blocks_end_at_lines_without_cells() -> None:
    text = "a\tb\nlonger cell here\tc\nplain line\nx\ty\n"
    assert tabwrite(text, minwidth=1, padding=1) == (
        "a                b\nlonger cell here c\nplain line\nx y\n")


@pytest.mark.parametrize(("src", "out"), [
    ("{{.Id}}", "abc"),
    ("{{.State.Status}}", "running"),
    ("{{json .Config.Labels}}", '{"a":"1","b":"<x>"}'),
    ("{{.Config.Labels}}", "map[a:1 b:<x>]"),
    ("{{index .Config.Labels \"a\"}}", "1"),
    ("{{index .Config.Labels \"zz\"}}", ""),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=<x>;"),
    ("{{if .State.Running}}yes{{else}}no{{end}}", "yes"),
    ("{{if eq .State.Status \"exited\"}}E{{else if .State.Running}}R{{end}}", "R"),
    ("{{join .Config.Cmd \" \"}}", "sh -c x"),
    ("{{.Config.Cmd}}", "[sh -c x]"),
    ("{{.Name | printf \"%s!\"}}", "/web!"),
    ("{{- .Id -}}  x  {{ .Name }}", "abcx  /web"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{len .Config.Cmd}}", "3"),
    ("{{upper .Name}} {{lower \"AB\"}} {{title \"ab cd\"}}", "/WEB ab Ab Cd"),
    ("{{.HostConfig.Binds}} {{.Config.Entrypoint}} {{json .Config.Entrypoint}}", "[] [] null"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Config.Volumes}}", "map[]"),
    ("{{range .Mounts}}{{.Destination}}{{else}}none{{end}}", "none"),
    ("{{/* comment */}}ok", "ok"),
    ("{{.State.Pid}} {{.State.Running}}", "42 true"),
    ("{{println .Id}}", "abc\n"),
])
def test_template_subset(src: str, out: str) -> None:
    data = {"Id": "abc", "Name": "/web", "State": {"Status": "running", "Running": True,
                                                   "Pid": 42},
            "Config": {"Labels": {"b": "<x>", "a": "1"}, "Cmd": ["sh", "-c", "x"],
                       "Entrypoint": None, "Volumes": None},
            "HostConfig": {"Binds": None}, "Mounts": []}
    assert Template(src).execute(data) == out


def test_template_missing_key_is_an_error_like_dockers_raw_fallback() -> None:
    with pytest.raises(TemplateError, match=r':1:8: executing "" at <.State.Nope>: map has '
                                            r'no entry for key "Nope"'):
        Template("{{.State.Nope}}").execute({"State": {}})


def test_template_errors() -> None:
    with pytest.raises(TemplateError, match="unclosed action"):
        Template("{{json .")
    with pytest.raises(TemplateError, match="unexpected EOF"):
        Template("{{if .A}}x")
    with pytest.raises(TemplateError, match='function "nope" not defined'):
        Template("{{nope .}}").execute({})


def test_resolve_format() -> None:
    assert resolve(None, "table {{.A}}\t{{.B}}") == resolve("table", "table {{.A}}\t{{.B}}")
    assert resolve("json", "table x").template == "{{json .}}"
    fmt = resolve("table {{.ID}}\\t{{.Names}}", "unused")
    assert fmt.table and fmt.template == "{{.ID}}\t{{.Names}}"
    assert not resolve("{{.ID}}", "x").table


def _container(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Id": CID, "Names": ["/web"], "Image": "bb", "ImageID": IMAGE_ID,
        "Command": "sleep 300", "Created": int(NOW) - 2, "State": "running",
        "Status": "Up 2 seconds", "Ports": [], "Labels": {}, "Mounts": [],
        "NetworkSettings": {"Networks": {"bridge": {}}}}
    base.update(over)
    return base


def test_ps_table_is_dockers() -> None:
    rows = [ContainerContext(_container(), now=NOW),
            ContainerContext(_container(Id="f" * 64, Names=["/long"], State="exited",
                                        Command="sh -c 'echo a long command line'",
                                        Status="Exited (3) 5 seconds ago",
                                        Created=int(NOW) - 3600), now=NOW)]
    out = render(resolve(None, PS_FORMAT), rows, PS_HEADERS)
    assert out == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED             STATUS"
        "                     PORTS     NAMES\n"
        "716326f0940a   bb        \"sleep 300\"              2 seconds ago       Up 2 seconds"
        "                         web\n"
        "ffffffffffff   bb        \"sh -c 'echo a long …\"   About an hour ago   "
        "Exited (3) 5 seconds ago             long\n")
    lines = out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES"]
    assert lines[0].startswith("CONTAINER ID   IMAGE     COMMAND ")
    assert lines[1].startswith('716326f0940a   bb        "sleep 300" ')
    assert "About an hour ago" in lines[2]
    assert lines[1].index("web") == lines[0].index("NAMES")


def test_ps_context_fields() -> None:
    c = ContainerContext(_container(Image="docker.io/library/busybox:latest@sha256:" + "a" * 64,
                                    Names=["/web", "/other/alias"],
                                    Labels={"b": "2", "a": "1"}, SizeRw=22,
                                    SizeRootFs=1_982_486), now=NOW)
    assert c.Image == "busybox:latest"
    assert c.Names == "web"
    assert c.Labels == "a=1,b=2"
    assert c.Label("b") == "2"
    assert c.Size == "22B (virtual 1.98MB)"
    assert c.RunningFor == "2 seconds ago"
    assert c.Networks == "bridge"
    assert ContainerContext(_container(Image=IMAGE_ID), now=NOW).Image == "74f90a722346"
    full = ContainerContext(_container(), trunc=False, now=NOW)
    assert full.ID == CID


def test_displayable_ports() -> None:
    ports = [
        {"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
        {"PrivatePort": 9000, "Type": "udp"}, {"PrivatePort": 9001, "Type": "udp"},
        {"PrivatePort": 443, "PublicPort": 443, "IP": "0.0.0.0", "Type": "tcp"},
        {"PrivatePort": 53, "PublicPort": 5353, "IP": "::", "Type": "udp"},
    ]
    assert displayable_ports(ports) == (
        "0.0.0.0:443->443/tcp, 9000-9001/udp, [::]:5353->53/udp, 0.0.0.0:8080->80/tcp")


def test_images_rows_and_table() -> None:
    image = {"Id": IMAGE_ID, "RepoTags": ["bb:latest", "docker.io/library/bb:v2"],
             "RepoDigests": [], "Created": int(NOW) - 9, "Size": 1_982_464,
             "Containers": -1}
    rows = image_rows(image, digests_wanted=False, trunc=True, now=NOW)
    out = render(resolve(None, IMAGE_FORMAT), rows, IMAGE_HEADERS)
    assert out == ("REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n"
                   "bb           latest    74f90a722346   9 seconds ago   1.98MB\n"
                   "bb           v2        74f90a722346   9 seconds ago   1.98MB\n")
    dangling = image_rows({"Id": IMAGE_ID, "RepoTags": [], "RepoDigests": [], "Created": 0,
                           "Size": 1}, False, True, NOW)
    assert (dangling[0].Repository, dangling[0].Tag) == ("<none>", "<none>")
    assert rows[0].to_json()["Containers"] == "N/A"


def test_history_context() -> None:
    h = HistoryContext({"Id": "<missing>", "Created": int(NOW) - 120,
                        "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"] and then a long tail text",
                        "Size": 0, "Comment": "c"}, trunc=True, human=True, now=NOW)
    assert h.ID == "<missing>"
    assert h.CreatedSince == "2 minutes ago"
    assert h.CreatedBy == '/bin/sh -c #(nop) CMD ["sh"] and then a long…'
    assert len(h.CreatedBy) == 45
    assert HistoryContext({"Size": 1500}, True, False, NOW).Size == "1500"


def test_small_helpers() -> None:
    assert truncate_id(IMAGE_ID) == "74f90a722346"
    assert ellipsis("abcdef", 4) == "abc…"
    assert ellipsis("abc", 4) == "abc"


def test_system_df_summary_rows() -> None:
    from dockyard.cli.diskusage import DF_FORMAT, DF_HEADERS, summary_rows
    du = {"LayersSize": 5_947_392,
          "Images": [{"Containers": 1, "Size": 1_982_464, "SharedSize": -1},
                     {"Containers": 0, "Size": 1_982_464, "SharedSize": -1}],
          "Containers": [{"State": "running", "SizeRw": 0}, {"State": "exited", "SizeRw": 22}],
          "Volumes": [], "BuildCache": []}
    assert render(resolve(None, DF_FORMAT), summary_rows(du), DF_HEADERS) == (
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images          2         1         5.947MB   5.947MB (100%)\n"
        "Containers      2         1         22B       22B (100%)\n"
        "Local Volumes   0         0         0B        0B\n"
        "Build Cache     0         0         0B        0B\n")


def test_info_layout() -> None:
    from dockyard.cli.info import server_lines
    lines = server_lines({"Containers": 1, "ContainersRunning": 1, "Images": 2,
                          "ServerVersion": "0.1.0", "Driver": "overlay2",
                          "DriverStatus": [["Backing Filesystem", "extfs"]],
                          "Plugins": {"Volume": ["local"], "Network": ["bridge"],
                                      "Log": ["json-file"]},
                          "Swarm": {"LocalNodeState": "inactive"}, "OSType": "linux",
                          "SecurityOptions": ["name=seccomp,profile=builtin"],
                          "MemTotal": 1024 ** 3, "NCPU": 2, "Debug": False})
    assert lines[:7] == ["Server:", " Containers: 1", "  Running: 1", "  Paused: 0",
                         "  Stopped: 0", " Images: 2", " Server Version: 0.1.0"]
    assert "  Backing Filesystem: extfs" in lines and " Swarm: inactive" in lines
    assert lines[lines.index(" Security Options:") + 1:][:2] == ["  seccomp",
                                                                 "   Profile: builtin"]
    assert " Total Memory: 1GiB" in lines and lines[-1] == " Live Restore Enabled: false"
