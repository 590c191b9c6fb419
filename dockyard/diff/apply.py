"""Unpacking layer tars into directories, confined to the destination.

``apply_layer`` turns one layer tar into one layer directory in overlayfs form (a whiteout
``.wh.x`` becomes a 0:0 char device ``x``, ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y``
on its directory) or, with ``overlay_whiteouts=False``, applies it flat onto a full tree
(whiteouts delete). ``extract_tar_into`` is ``docker cp`` into a container's rootfs.

Safety model. Names are cleaned lexically (a leading ``/`` is dropped, as Docker does) and a
``..`` that climbs out of the destination is refused. Directories are walked with
``openat(O_NOFOLLOW)`` one component at a time, symlinks met on the way are resolved as if
chrooted at the root (:mod:`dockyard.diff.safepath`), and every change is an ``*at`` call on
a single name under an open directory fd, never following a final symlink, so nothing can
be written outside the root even if the tree changes meanwhile. A member may not be written
through a symlink that the same archive created (``ln -s /etc evil; evil/passwd``): that is
refused outright, as real layer tars never do it. Hardlink targets must be inside the
destination and already exist. ``trusted.overlay.*``/``user.overlay.*`` xattrs in a tar are
dropped: only whiteout entries may steer overlayfs.

Failure contract. ``apply_layer`` raises InvalidArgument for bad or truncated input and
leaves whatever it had written: the caller must unpack into a fresh, private directory and
rename it into place only on success (``unpack_layer`` does exactly that), so a partial layer
is never visible. ``extract_tar_into`` writes each file under a temporary name and renames
it over the target, so no half-written file is ever visible; members already extracted when
an error is found stay, as with Docker. For a running container, freeze it while copying
(as Docker pauses it): the fd walk keeps writes inside the rootfs regardless.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

from dockyard.diff.extract import ApplyResult, Extractor
from dockyard.errors import Conflict

__all__ = ["ApplyResult", "apply_layer", "extract_tar_into", "unpack_layer"]


def apply_layer(stream: BinaryIO, dest: Path, *, overlay_whiteouts: bool = True,
                lenient_end: bool = False) -> ApplyResult:
    """Unpack the layer tar ``stream`` (plain/gzip/zstd/bzip2/xz) into the directory ``dest``.

    ``dest`` must be a fresh directory private to the caller, renamed into place only after
    success (see the module docstring, or use :func:`unpack_layer`). With
    ``overlay_whiteouts`` whiteouts are stored in overlayfs form; without, the layer is
    applied flat onto whatever tree ``dest`` holds (whiteouts and opaque markers delete).
    Reads the stream once, to its end; raises InvalidArgument on bad or truncated input.
    """
    ex = Extractor(dest, "", overlay=overlay_whiteouts, atomic=False, lenient_end=lenient_end)
    try:
        return ex.run(stream)
    finally:
        ex.close()


def unpack_layer(stream: BinaryIO, target: Path, *, overlay_whiteouts: bool = True) -> ApplyResult:
    """``apply_layer`` into a temporary sibling of ``target``, renamed to it on success.

    On any error the temporary directory is removed and ``target`` never appears. Raises
    Conflict if ``target`` already exists and is not an empty directory.
    """
    temp = target.with_name(f".{target.name}.unpack-{secrets.token_hex(6)}")
    os.mkdir(temp, 0o755)
    try:
        result = apply_layer(stream, temp, overlay_whiteouts=overlay_whiteouts)
        try:
            os.rename(temp, target)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise Conflict(f"layer directory {target} already exists") from None
            raise
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return result


def extract_tar_into(stream: BinaryIO, root: Path, *, dest: str = "/",
                     owner: tuple[int, int] | None = None,
                     no_overwrite_dir_non_dir: bool = False) -> ApplyResult:
    """``docker cp`` into a rootfs: extract ``stream`` flat into directory ``dest`` of ``root``.

    ``dest`` is resolved inside ``root`` with symlinks chrooted (NotFound if missing,
    InvalidArgument if not a directory); members may not climb above ``dest`` and symlinks
    met are resolved chrooted at ``root``. Each file is written under a temporary name and
    renamed into place. ``owner`` forces (uid, gid) of everything created (the API's
    ``copyUIDGID``), else the tar's ids are kept; ``no_overwrite_dir_non_dir`` refuses to
    replace a directory with a non-directory or the reverse (the API parameter).
    """
    ex = Extractor(root, dest, overlay=False, atomic=True, owner=owner,
                    no_overwrite=no_overwrite_dir_non_dir)
    try:
        return ex.run(stream)
    finally:
        ex.close()
