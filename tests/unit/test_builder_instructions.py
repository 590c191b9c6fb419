"""The Dockerfile front end beyond the golden files: heredocs, directives, flags, typed
instructions and their errors, stages and meta args, and the shell-word pattern forms."""
from __future__ import annotations

import pytest

from dockyard.builder.bflags import Mount, parse_duration, parse_mount
from dockyard.builder.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    FromInstruction,
    Healthcheck,
    Instruction,
    Label,
    Onbuild,
    Run,
    Shell,
    Volume,
    Workdir,
    expand_from,
    parse_node,
    parse_stages,
)
from dockyard.builder.parser import DockerfileParseError, Heredoc, parse, render
from dockyard.builder.shell import Lexer, expand_word, go_quote, process_word
from dockyard.errors import InvalidArgument


def one(text: str) -> Instruction:
    """The only instruction of the first stage of ``FROM scratch`` + ``text``."""
    (stage,) = parse_stages("FROM scratch\n" + text).stages
    (instruction,) = stage.instructions
    return instruction


def error(text: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_stages(text)
    return str(info.value)


# ---- heredocs -------------------------------------------------------------------------------

def test_run_heredoc_body_and_lines() -> None:
    tree = parse("FROM scratch\nRUN <<EOF\necho one\necho two\nEOF\nUSER x\n")
    run, user = tree.children[1:]
    assert run.args == ("<<EOF",)
    assert run.heredocs == (Heredoc("EOF", "echo one\necho two\n"),)
    assert (run.start_line, run.end_line, user.start_line) == (2, 5, 6)
    instruction = one("RUN <<EOF\necho hi\nEOF\n")
    assert isinstance(instruction, Run)
    assert instruction.command == ("<<EOF",) and instruction.prepend_shell
    assert instruction.heredocs[0].content == "echo hi\n"


def test_several_heredocs_on_one_line_are_read_in_order() -> None:
    node = parse("RUN cat <<A >a && cat <<'B' >b\nfirst\nA\nsecond $X\nB\n").children[0]
    assert [(d.name, d.content, d.expand) for d in node.heredocs] == [
        ("A", "first\n", True), ("B", "second $X\n", False)]


def test_quoted_delimiter_disables_expansion() -> None:
    for opener in ('<<"EOF"', "<<'EOF'", '<<E"O"F'):
        node = parse(f"RUN {opener}\nx\nEOF\n").children[0]
        assert node.heredocs[0].name == "EOF" and not node.heredocs[0].expand


def test_dash_heredoc_strips_tabs_from_terminator_and_copy_body() -> None:
    node = parse("COPY <<-EOT /dst\n\tline one\n\t\tline two\n\tEOT\n").children[0]
    assert node.heredocs[0].content == "\tline one\n\t\tline two\n"
    copy = one("COPY <<-EOT /dst\n\tline one\n\t\tline two\n\tEOT\n")
    assert isinstance(copy, Copy)
    assert copy.sources == () and copy.dest == "/dst"
    assert copy.heredocs == (Heredoc("EOT", "line one\nline two\n", chomp=True),)


def test_copy_mixes_heredocs_and_paths() -> None:
    copy = one("COPY a.txt <<X b.txt /dst/\nbody\nX\n")
    assert isinstance(copy, Copy)
    assert copy.sources == ("a.txt", "b.txt")
    assert [d.name for d in copy.heredocs] == ["X"]


def test_heredoc_fd_and_onbuild_heredoc() -> None:
    assert parse("RUN 3<<EOF cat /dev/fd/3\nx\nEOF").children[0].heredocs[0].fd == 3
    onbuild = one("ONBUILD RUN <<EOF\necho later\nEOF\n")
    assert isinstance(onbuild, Onbuild)
    assert onbuild.expression == "RUN <<EOF\necho later\nEOF"


def test_no_heredocs_in_json_form_or_other_instructions() -> None:
    tree = parse('RUN ["sh", "<<EOF"]\nCMD <<EOF\nEOF\n')
    assert all(node.heredocs == () for node in tree.children)
    assert [node.keyword for node in tree.children] == ["run", "cmd", "eof"]


def test_heredoc_errors() -> None:
    assert error("FROM a\nRUN <<EOF\necho\n") == (
        "dockerfile parse error on line 2: unterminated heredoc")
    assert error("FROM a\nCOPY a <<EOF\nEOF\n").endswith(
        "COPY cannot accept a heredoc as a destination")


# ---- directives and lines -------------------------------------------------------------------

def test_escape_directive_changes_continuation_and_records_syntax() -> None:
    tree = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n")
    assert tree.escape == "`"
    assert tree.directive("syntax") == "docker/dockerfile:1"
    assert tree.children[1].args == ("dir c:\\   /w",)


def test_directive_after_another_line_is_a_comment() -> None:
    assert parse("FROM x\n# escape=`\nRUN a `\n").escape == "\\"
    assert parse("# hello\n# escape=`\nFROM x\n").escape == "\\"


@pytest.mark.parametrize(("text", "message"), [
    ("# escape=`\n# escape=\\\nFROM x", "only one escape parser directive can be used"),
    ("# escape=x\nFROM x", "invalid escape token 'x' does not match ` or \\"),
])
def test_bad_directives(text: str, message: str) -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse(text)
    assert info.value.detail == message


def test_byte_order_mark_keywords_case_and_crlf() -> None:
    tree = parse("\ufeffFrom busybox\r\nrun echo \\\r\n  hi\r\n")
    assert [node.value for node in tree.children] == ["From", "run"]
    assert tree.children[1].args == ("echo   hi",)
    assert render(tree) == '(from "busybox")\n(run "echo   hi")'


def test_empty_continuation_line_warns() -> None:
    tree = parse("FROM x\nRUN a \\\n\n  b\n")
    assert tree.children[1].args == ("a   b",)
    assert tree.warnings[0].message.startswith("Empty continuation line found in: RUN a")


def test_render_quotes_like_go() -> None:
    assert go_quote('a"b\\c\n\t\x00\x7f\u00ad♥') == '"a\\"b\\\\c\\n\\t\\x00\\x7f\\u00ad♥"'
    tree = parse('COPY --chown="a b" --link x y\nONBUILD ADD --chmod=644 a b\n')
    assert render(tree) == ('(copy ["--chown=a b" "--link"] "x" "y")\n'
                            '(onbuild (add ["--chmod=644"] "a" "b"))')


# ---- typed instructions ---------------------------------------------------------------------

def test_command_forms() -> None:
    assert one("RUN echo $HOME") == Run(("echo $HOME",), True, original="RUN echo $HOME",
                                        start_line=2, end_line=2)
    cmd = one('CMD ["nginx", "-g", "daemon off;"]')
    assert isinstance(cmd, Cmd) and cmd.command == ("nginx", "-g", "daemon off;")
    assert not cmd.prepend_shell
    entrypoint = one("ENTRYPOINT []")
    assert isinstance(entrypoint, Entrypoint) and entrypoint.command == ()
    shell = one('SHELL ["powershell", "-Command"]')
    assert isinstance(shell, Shell) and shell.shell == ("powershell", "-Command")


def test_env_label_expose_volume_workdir() -> None:
    env = one('ENV A=1 B="two words" C=x\\ y')
    assert isinstance(env, Env)
    assert env.pairs == (("A", "1"), ("B", '"two words"'), ("C", "x\\ y"))
    legacy = one("ENV PATH /usr/bin:$PATH")
    assert isinstance(legacy, Env) and legacy.pairs == (("PATH", "/usr/bin:$PATH"),)
    label = one('LABEL org.title="x" version=1')
    assert isinstance(label, Label) and dict(label.pairs)["version"] == "1"
    expose = one("EXPOSE 8080 443/tcp 22")
    assert isinstance(expose, Expose) and expose.ports == ("22", "443/tcp", "8080")
    volume = one('VOLUME ["/a", "/b"]')
    assert isinstance(volume, Volume) and volume.paths == ("/a", "/b")
    workdir = one("WORKDIR /srv/$APP  dir")
    assert isinstance(workdir, Workdir) and workdir.path == "/srv/$APP  dir"


def test_copy_and_add_flags() -> None:
    copy = one("COPY --from=build --chown=app:app --chmod=0644 --link --parents "
               "--exclude=*.md --exclude=tmp -- a b /dst/")
    assert isinstance(copy, Copy)
    assert (copy.from_stage, copy.chown, copy.chmod) == ("build", "app:app", "0644")
    assert copy.link and copy.parents and copy.excludes == ("*.md", "tmp")
    assert copy.sources == ("a", "b") and copy.dest == "/dst/"
    add = one("ADD --keep-git-dir=true --checksum=sha256:abc --link=false git@x:y.git /src")
    assert isinstance(add, Add)
    assert add.keep_git_dir and not add.link and add.checksum == "sha256:abc"
    json_copy = one('COPY ["a b", "/c d/"]')
    assert isinstance(json_copy, Copy) and json_copy.sources == ("a b",)


def test_healthcheck() -> None:
    check = one("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0s "
                "--start-interval=2s --retries=0 CMD curl -f http://x/ || exit 1")
    assert isinstance(check, Healthcheck)
    assert check.test == ("CMD-SHELL", "curl -f http://x/ || exit 1")
    assert (check.interval, check.timeout, check.start_period, check.start_interval,
            check.retries) == (90 * 10**9, 5 * 10**8, 0, 2 * 10**9, 0)
    exec_form = one('HEALTHCHECK CMD ["/bin/check", "-q"]')
    assert isinstance(exec_form, Healthcheck) and exec_form.test == ("CMD", "/bin/check", "-q")
    none = one("HEALTHCHECK NONE")
    assert isinstance(none, Healthcheck) and none.test == ("NONE",)


def test_run_mounts_and_network() -> None:
    run = one("RUN --mount=type=cache,target=/root/.cache,sharing=locked,mode=0755 "
              "--mount=type=secret,id=npm,required --mount=from=build,src=/out,dst=/in "
              "--network=none make")
    assert isinstance(run, Run) and run.network == "none"
    cache, secret, bind = run.mounts
    assert cache == Mount("cache", target="/root/.cache", readonly=False, sharing="locked",
                          mode=0o755)
    assert secret == Mount("secret", cache_id="npm", required=True)
    assert bind == Mount("bind", from_stage="build", source="/out", target="/in")


def test_mount_values_with_variables_wait_for_expansion() -> None:
    run = one("RUN --mount=type=cache,target=$HOME/.cache,uid=$UID make")
    assert isinstance(run, Run)
    assert run.mounts[0].target == "" and run.mounts[0].uid is None
    env = {"HOME": "/root", "UID": "1000"}
    (mount,) = run.expanded_mounts(lambda value: expand_word(value, env))
    assert (mount.target, mount.uid) == ("/root/.cache", 1000)


@pytest.mark.parametrize(("spec", "message"), [
    ("type=nfs", 'unsupported mount type "nfs"'),
    ("type=bind,mode=0600", 'mode not allowed for "bind" type mounts'),
    ("type=bind,sharing=shared", "invalid cache sharing set for bind mount"),
    ("type=secret,from=x,id=y", "secret mount should not have a from"),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=bind,required", "unexpected key 'required' for mount type 'bind'"),
    ("type=cache,uid=root", "invalid value root for uid"),
    ("type=cache,target", "invalid field 'target' must be a key=value pair"),
    ("type=cache,colour=red", "unexpected key 'colour' in 'colour=red'"),
    ("from=$STAGE", "'from' doesn't support variable expansion, define alias stage instead"),
])
def test_bad_mounts(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_mount(spec)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "nanoseconds"), [
    ("0", 0), ("1.5s", 1_500_000_000), ("1h2m3s", 3_723_000_000_000), ("-2ms", -2_000_000),
    ("300us", 300_000), (".5m", 30_000_000_000),
])
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nFOO bar", "dockerfile parse error on line 2: unknown instruction: FOO"),
    ("FROM a\nFORM b", ("dockerfile parse error on line 2: unknown instruction: FORM "
                       "(did you mean FROM?)")),
    ("FROM a b", ("dockerfile parse error on line 1: "
                 "FROM requires either one or three arguments")),
    ("FROM a AS 1st", ('invalid name for build stage: "1st", name can\'t start with a number '
                      "or contain symbols")),
    ("FROM a AS context", 'invalid name for build stage: "context", name is reserved'),
    ("RUN true", "dockerfile parse error on line 1: no build stage in current context"),
    ("FROM a\nENV =x", "ENV names can not be blank"),
    ("FROM a\nARG =x", "ARG names can not be blank"),
    ("FROM a\nENV a=1 b", ("Syntax error - can't find = in \"b\". "
                          "Must be of the form: name=value")),
    ("FROM a\nCOPY onlyone", ("dockerfile parse error on line 2: COPY requires at least two "
                             "arguments, but only one was provided. Destination could not "
                             "be determined")),
    ("FROM a\nWORKDIR", "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER", "USER requires exactly one argument"),
    ("FROM a\nEXPOSE", "EXPOSE requires at least one argument"),
    ('FROM a\nVOLUME ["/a", " "]', "VOLUME specified can not be an empty string"),
    ("FROM a\nSHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []", "SHELL requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK CONNECT x", 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x", 'time: missing unit in duration "5"'),
    ("FROM a\nHEALTHCHECK --interval=5y CMD x", 'time: unknown unit "y" in duration "5y"'),
    ("FROM a\nHEALTHCHECK --timeout=abc CMD x", 'time: invalid duration "abc"'),
    ("FROM a\nHEALTHCHECK --timeout=10us CMD x", 'Interval "timeout" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("FROM a\nCOPY --foo=bar a b", "dockerfile parse error on line 2: unknown flag: --foo"),
    ("FROM a\nCOPY --form=x a b", "unknown flag: --form (did you mean --from?)"),
    ("FROM a\nCOPY --from=a --from=b x y", "duplicate flag specified: --from"),
    ("FROM a\nCOPY --chown x y", "missing a value on flag: --chown"),
    ("FROM a\nCOPY --link= x y", "missing a value on flag: --link"),
    ("FROM a\nCOPY --link=yes x y", "expecting boolean value for flag --link, not: yes"),
    ("FROM a\nENV --x=1 a=b", "unknown flag: --x"),
    ("FROM a\nRUN --network=bridge x", 'network mode "bridge" not supported'),
    ("FROM a\nRUN --mount=type=tmpfs,size=1g,ro=maybe x", "invalid value for ro: maybe"),
    ("FROM a\nCMD [1, 2]", ("when using JSON array syntax, arrays must be comprised of "
                           "strings only")),
    ("FROM a\nENV PATH", "ENV must have two arguments"),
])
def test_errors(text: str, message: str) -> None:
    got = error(text)
    assert got.startswith("dockerfile parse error on line ")
    assert got.endswith(message)


def test_error_carries_lines() -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse_stages("FROM a\nRUN --bad \\\n  x\n")
    assert (info.value.start_line, info.value.end_line) == (2, 3)
    assert info.value.detail == "unknown flag: --bad"


def test_flags_end_at_double_dash_and_keep_unknown_ones_for_later() -> None:
    node = parse("COPY --a=1 -- --b c d").children[0]
    assert node.flags == ("--a=1",) and node.args == ("--b", "c", "d")
    with pytest.raises(InvalidArgument):
        parse_node(node)


# ---- stages and meta args -------------------------------------------------------------------

DOCKERFILE = """\
ARG BASE=alpine
ARG VERSION=3.19 EXTRA
ARG IMAGE=${BASE}:${VERSION}
FROM --platform=$BUILDPLATFORM ${IMAGE} AS Build
ARG VERSION
RUN make
FROM scratch
COPY --from=build /out /
"""


def test_stages_and_meta_args() -> None:
    dockerfile = parse_stages(DOCKERFILE)
    assert [(a.name, a.default) for a in dockerfile.meta_args] == [
        ("BASE", "alpine"), ("VERSION", "3.19"), ("EXTRA", None),
        ("IMAGE", "${BASE}:${VERSION}")]
    build, final = dockerfile.stages
    assert (build.name, build.base, build.platform) == ("build", "${IMAGE}", "$BUILDPLATFORM")
    assert build.original == "FROM --platform=$BUILDPLATFORM ${IMAGE} AS Build"
    assert [type(i) for i in build.instructions] == [Arg, Run]
    assert (final.name, final.base) == ("", "scratch")
    assert isinstance(final.instructions[0], Copy)
    assert dockerfile.stage("BUILD") is build and dockerfile.stage("1") is final
    with pytest.raises(InvalidArgument):
        dockerfile.stage("missing")


def test_expand_from_uses_meta_args_and_build_args() -> None:
    dockerfile = parse_stages(DOCKERFILE)
    build = dockerfile.stages[0]
    assert dockerfile.expand_from(build, {}) == "alpine:3.19"
    assert dockerfile.expand_from(build, {"VERSION": "edge", "UNDECLARED": "x"}) == "alpine:edge"
    assert dockerfile.expand_from(build, {"IMAGE": "debian", "BASE": None}) == "debian"
    blank = parse_stages("ARG B\nFROM $B\n")
    with pytest.raises(InvalidArgument, match=r"base name \(\$B\) should not be blank"):
        expand_from(blank.stages[0], {}, blank.meta_args)


def test_from_instruction_and_multiple_args_on_one_line() -> None:
    (node,) = parse("FROM --platform=linux/arm64 busybox:1 as base").children
    assert parse_node(node) == (FromInstruction(
        "busybox:1", "base", "linux/arm64", original=node.original, start_line=1,
        end_line=1),)
    args = parse_node(parse('ARG a b=2 c="x y"').children[0])
    assert [(a.name, a.default) for a in args if isinstance(a, Arg)] == [
        ("a", None), ("b", "2"), ("c", '"x y"')]


# ---- shell words ----------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "expected"), [
    ("${F#*.}", "tar.gz"), ("${F##*.}", "gz"), ("${F%.*}", "abc.tar"), ("${F%%.*}", "abc"),
    ("${F#abc}", ".tar.gz"), ("${F%.gz}", "abc.tar"), ("${F#?b}", "c.tar.gz"),
    ("${F/./_}", "abc_tar.gz"), ("${F//./_}", "abc_tar_gz"), ("${F/t*r/X}", "abc.X.gz"),
    ("${F//[/x}", "abc.tar.gz"), ("${U#x}", ""), ("${S#\\*}", "x*"), ("${S%\\*}", "*x"),
    ("${F-d}", "abc.tar.gz"), ("${U-d}", "d"), ("${E-d}", ""), ("${E:-d}", "d"),
    ("${E+s}", "s"), ("${E:+s}", ""), ("${U+s}", ""),
])
def test_pattern_and_default_forms(word: str, expected: str) -> None:
    env = {"F": "abc.tar.gz", "S": "*x*", "E": ""}
    assert expand_word(word, env) == expected


@pytest.mark.parametrize(("word", "message"), [
    ("${U:?}", "U: is not allowed to be unset"),
    ("${E:?must be set}", "E: must be set"),
    ("${F:#x}", "unsupported modifier (:#) in substitution"),
    ("${F/x", "syntax error: missing '/' in ${}"),
    ("${F#\\q}", "invalid pattern (\\q) in substitution: invalid escape '\\q'"),
    ("'open", "unexpected end of statement while looking for matching single-quote"),
])
def test_expansion_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        expand_word(word, {"F": "abc", "E": ""})
    assert str(info.value) == f"failed to process {go_quote(word)}: {message}"


def test_process_word_reports_used_and_unset_variables() -> None:
    result = process_word('$A "${B:-$C}" ${D#x} $1', {"A": "a", "C": "c d", "D": "xd"})
    assert result.word == "a c d d "
    assert result.words == ("a", "c d", "d")
    assert result.used == {"A", "C", "D"} and result.unset == {"B", "1"}


def test_lexer_options() -> None:
    assert Lexer(escape="`").process("a`$b`\\c", {}).word == "a$b\\c"
    assert Lexer(skip_unset=True).process("$X ${Y} ${Z:-d} $K", {"K": "k"}).word == (
        "$X ${Y} ${Z:-d} k")
    raw = Lexer(raw_quotes=True, raw_escapes=True).process("'a' \"b\" c\\ d", {})
    assert raw.words == ("'a'", '"b"', "c\\ d")
    assert Lexer(skip_quotes=True).process("'$A'", {"A": "x"}).word == "'x'"
