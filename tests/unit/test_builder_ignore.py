"""dockyard.builder.ignore: .dockerignore as moby/patternmatcher + ignorefile.ReadAll."""
from __future__ import annotations

import pytest

from dockyard.builder.ignore import IgnoreMatcher, go_clean, go_match, read_patterns
from dockyard.errors import InvalidArgument


def excluded(patterns: list[str], path: str) -> bool:
    return IgnoreMatcher.from_patterns(patterns).excluded(path)


# patternmatcher's own TestMatches table (one pattern, MatchesOrParentMatches)
SINGLE = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True),
    ("**/", "file/", True), ("**", "dir/file", True), ("**/", "dir/file", True),
    ("**", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True), ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True), ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False), ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # Docker's documented examples
    ("*/temp*", "somedir/temporary.txt", True), ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False), ("*/temp*", "a/b/temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True), ("*/*/temp*", "a/temp", False),
    ("temp?", "tempa", True), ("temp?", "tempb", True), ("temp?", "temp", False),
    ("temp?", "tempab", False), ("temp?", "temp/", False),
    ("**/*.go", "main.go", True), ("**/*.go", "a/b/c.go", True), ("**/*.go", "a/go", False),
    # parent directories, leading / and ./, quirks of patternmatcher's shortcuts
    ("foo", "foo/bar/baz", True), ("foo", "foobar", False), ("/abs", "abs", True),
    ("/abs", "x/abs", False), ("./x", "x", True), ("x/../y", "y", True),
    ("dir/", "dir/file", True), ("**.go", "x.go", True), ("**foo", "barfoo", True),
    ("../x", "x", False), ("*", "a/b", True), ("a[/]b", "a/b", True), ("\\*", "*", True),
    ("\\*", "a", False),
]


@pytest.mark.parametrize(("pattern", "path", "want"), SINGLE)
def test_single_pattern(pattern: str, path: str, want: bool) -> None:
    assert IgnoreMatcher.from_text(pattern).excluded(path) is want


MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    # Docker's documented README examples
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-x.md", False),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    # exceptions under excluded directories: last match wins
    (["vendor", "!vendor/keep.txt"], "vendor/keep.txt", False),
    (["vendor", "!vendor/keep.txt"], "vendor/other.txt", True),
    (["vendor", "!vendor/keep"], "vendor/keep/deep/x", False),
    (["vendor", "!vendor/keep.txt", "vendor"], "vendor/keep.txt", True),
    (["!x", "x"], "x", True),
    (["x", "!x"], "x", False),
]


@pytest.mark.parametrize(("patterns", "path", "want"), MULTI)
def test_pattern_lists(patterns: list[str], path: str, want: bool) -> None:
    assert excluded(patterns, path) is want


def test_read_all_matches_docker() -> None:
    content = ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
               "! /inverted/abs/path\n!\n! \n")
    assert read_patterns(content) == ["test1", "test2", "a/file/here", "lastfile",
                                      "!inverted/abs/path", "!", "!"]


def test_comments_whitespace_bom_and_crlf() -> None:
    text = "\ufeff# comment\r\n  spaced.txt  \r\n  # not a comment\n\t\n./dot//x/\n"
    assert read_patterns(text) == ["spaced.txt", "# not a comment", "dot/x"]
    matcher = IgnoreMatcher.from_text(text)
    assert matcher.excluded("spaced.txt") and matcher.excluded("dot/x/y")
    assert matcher.excluded("# not a comment") and not matcher.excluded("# comment")


def test_empty_and_root() -> None:
    matcher = IgnoreMatcher.from_text("")
    assert matcher.patterns == () and not matcher.excluded("anything")
    assert not IgnoreMatcher.from_text("*\n**").excluded(".")
    assert not IgnoreMatcher.from_text("/").excluded("x")


@pytest.mark.parametrize("bad", ["!", "! ", "[", "a[", "a[]", "x\\", "[a-]"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        IgnoreMatcher.from_text(bad)


def test_is_dir_does_not_matter() -> None:
    matcher = IgnoreMatcher.from_text("build/")
    assert matcher.excluded("build", is_dir=True) and matcher.excluded("build", is_dir=False)


MAY_CONTAIN = [
    (["vendor", "!vendor/keep.txt"], "vendor", True),
    (["vendor", "!vendor/a/keep.txt"], "vendor/a", True),
    (["vendor", "!vendor/a/keep.txt"], "vendor/b", False),
    (["vendor", "!other/keep.txt"], "vendor", False),
    (["vendor"], "vendor", False),
    (["*", "!*/keep"], "anything", True),  # BuildKit-like: wildcard exceptions descend
    (["*", "!**/keep"], "a", True),
    (["a", "!a"], "a", True),
    (["a/b", "!a"], "a/b", True),  # an exception on a parent
]


@pytest.mark.parametrize(("patterns", "directory", "want"), MAY_CONTAIN)
def test_may_contain_exceptions(patterns: list[str], directory: str, want: bool) -> None:
    assert IgnoreMatcher.from_patterns(patterns).may_contain_exceptions(directory) is want


GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "abc", True), ("a*", "ab/c", False), ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False),
    ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True),
    ("[x\\-]", "-", True), ("[x\\-]", "z", False), ("[\\-x]", "x", True),
    ("*x", "xxx", True), ("**/*.py", "a/b.py", True), ("**/*.py", "b.py", False),
    ("**/*.py", "a/b/c.py", False),
]


@pytest.mark.parametrize(("pattern", "name", "want"), GO_MATCH)
def test_go_filepath_match(pattern: str, name: str, want: bool) -> None:
    assert go_match(pattern, name) is want


@pytest.mark.parametrize("bad", ["[]a]", "[-]", "[x-]", "[", "[^", "[^bc", "a[", "a\\",
                                 "*x\\"])
def test_go_match_syntax_errors(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        go_match(bad, "a")


@pytest.mark.parametrize(("raw", "want"), [
    ("", "."), (".", "."), ("a//b/./c/", "a/b/c"), ("/../a", "/a"), ("../../a", "../../a"),
    ("a/../..", ".."), ("//x", "/x"), ("/", "/")])
def test_go_clean(raw: str, want: str) -> None:
    assert go_clean(raw) == want
