"""Layer tars in and out: unpacking, diffing and archiving container filesystems.

* ``safepath``  — resolve paths inside a root as if chrooted (by path, or by directory fd).
* ``apply``     — unpack a layer tar into a layer dir (overlay form) or flat onto a tree;
  ``docker cp`` into a rootfs. The engine is ``extract``.
* ``changes``   — ``docker diff`` of an overlay upper dir, and its layer tar (commit).
* ``archive``   — ``docker cp`` out of / ``docker export`` of a rootfs, with the path stat.
* ``tarstream`` / ``tarwrite`` / ``treetar`` — tar framing (reader, writer) and tree walking.
"""
