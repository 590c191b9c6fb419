"""Image use-cases: import, tag, remove (Docker's rmi rules), history, commit."""
from __future__ import annotations

import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

from dockyard.diff.changes import write_layer_tar
from dockyard.engine.events import EventBus
from dockyard.engine.paths import Paths
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.image.model import Image, new_config
from dockyard.image.store import ImageStore
from dockyard.metadata.containers import ContainerRecord
from dockyard.types import reference
from dockyard.util.ids import short_id
from dockyard.util.timefmt import now_rfc3339, parse_rfc3339

ContainerLister = Callable[[], list[ContainerRecord]]


class Images:
    def __init__(self, store: ImageStore, events: EventBus, paths: Paths,
                 containers: ContainerLister) -> None:
        self.store = store
        self.events = events
        self.paths = paths
        self._containers = containers

    def tag(self, name: str, repo: str, tag: str = "") -> None:
        image = self.store.resolve(name)
        target = repo + (f":{tag}" if tag else "")
        ref = reference.parse(target)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.store.tag(image.id, ref)
        self.events.publish("image", "tag", image.id, name=ref.familiar())

    def import_tar(self, stream: BinaryIO, repo: str, tag: str, changes: list[str],
                   message: str) -> Image:
        from dockyard.engine.dockerfile_changes import apply_changes
        run_config = apply_changes({}, changes)
        with self.store.lock:
            layer = self.store.add_layer(stream, "")
            history = [{"created": now_rfc3339(), "created_by": "",
                        "comment": message or "Imported from -"}]
            config = new_config(run_config, [layer.diff_id], history, now_rfc3339())
            image = self.store.create(config)
        if repo:
            self.store.tag(image.id, reference.parse(repo + (f":{tag}" if tag else "")))
        self.events.publish("image", "import", image.id)
        return self.store.get(image.id) or image

    def history(self, name: str) -> list[dict[str, Any]]:
        image = self.store.resolve(name)
        history = image.config.get("history") or []
        sizes = [self.store.snapshots.get(c) for c in _chains(image)]
        layer_index = 0
        rows: list[dict[str, Any]] = []
        for entry in history:
            size = 0
            if not entry.get("empty_layer"):
                snap = sizes[layer_index] if layer_index < len(sizes) else None
                size = snap.size if snap else 0
                layer_index += 1
            rows.append({"Id": "<missing>", "Created": int(parse_rfc3339(entry.get("created", ""))),
                         "CreatedBy": entry.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": entry.get("comment", "")})
        if not rows:
            rows.append({"Id": "<missing>", "Created": int(image.created), "CreatedBy": "",
                         "Tags": None, "Size": image.size, "Comment": ""})
        rows.reverse()
        for index, ancestor in self._ancestors_by_history(image, len(rows)):
            rows[index]["Id"] = ancestor.id
            rows[index]["Tags"] = [reference.parse(t).familiar() for t in ancestor.tags] or None
        return rows

    def _ancestors_by_history(self, image: Image, total: int) -> list[tuple[int, Image]]:
        """Local ancestors (built or committed here) own the history rows they ended on."""
        found = []
        current: Image | None = image
        while current is not None:
            length = len(current.config.get("history") or []) or 1
            if 0 < length <= total:
                found.append((total - length, current))
            current = self.store.get(current.parent) if current.parent else None
        return found

    # -- remove -------------------------------------------------------------------------
    def remove(self, name: str, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        image = self.store.resolve(name)
        by_ref = self._is_reference(name, image)
        users = [c for c in self._containers() if c.image_id == image.id]
        result: list[dict[str, str]] = []
        names = [t for t in image.tags if "@" not in t]  # repo@digest refs are not tags
        # By reference, only that reference goes while others remain: for a tag, other tags
        # (digest refs of its repository go with the last tag, as in Docker); for a digest
        # reference, any other reference.
        if by_ref and (len(names) > 1 or ("@" in name and len(image.tags) > 1)):
            ref = reference.parse(name)
            self.store.untag(ref)
            self.events.publish("image", "untag", image.id, name=ref.familiar())
            return [{"Untagged": ref.familiar()}]
        if by_ref and users and not force:
            running = [c for c in users if c.state.running]
            user = (running or users)[0]
            raise Conflict(f'conflict: unable to remove repository reference "{name}" (must '
                           f'force) - container {short_id(user.id)} is using its referenced '
                           f'image {short_id(image.id)}')
        if not by_ref:
            self._check_delete_by_id(image, users, force)
        for tag in image.tags:
            ref = reference.parse(tag)
            self.store.untag(ref)
            self.events.publish("image", "untag", image.id, name=ref.familiar())
            result.append({"Untagged": ref.familiar()})
        if users or self.store.children(image.id):
            return result
        self._delete(image, result)
        if prune:
            self._prune_parents(image.parent, result)
        return result

    def _delete(self, image: Image, result: list[dict[str, str]]) -> None:
        self.store.delete(image.id)
        self.events.publish("image", "delete", image.id)
        result.append({"Deleted": image.id})

    def _prune_parents(self, parent_id: str, result: list[dict[str, str]]) -> None:
        """Intermediate images (untagged, unused, childless parents) go with their child, like
        Docker does for build steps."""
        used = {c.image_id for c in self._containers()}
        while parent_id:
            parent = self.store.get(parent_id)
            if parent is None or parent.tags or parent.id in used or \
                    self.store.children(parent.id):
                return
            self._delete(parent, result)
            parent_id = parent.parent

    def prune(self, dangling_only: bool = True,
              selected: Callable[[Image], bool] | None = None) -> dict[str, Any]:
        """``docker image prune [-a]``: unused images (only untagged ones by default)."""
        used = {c.image_id for c in self._containers()}
        report: list[dict[str, str]] = []
        reclaimed = 0
        changed = True
        while changed:
            changed = False
            for image in self.store.list():
                if image.id in used or self.store.children(image.id):
                    continue
                if dangling_only and image.tags:
                    continue
                if selected is not None and not selected(image):
                    continue
                for tag in image.tags:
                    self.store.untag(reference.parse(tag))
                    report.append({"Untagged": reference.parse(tag).familiar()})
                reclaimed += image.size
                self._delete(image, report)
                changed = True
        return {"ImagesDeleted": report or None, "SpaceReclaimed": reclaimed}

    @staticmethod
    def _is_reference(name: str, image: Image) -> bool:
        try:
            return str(reference.parse(name)) in image.tags
        except InvalidArgument:
            return False

    def _check_delete_by_id(self, image: Image, users: list[ContainerRecord],
                            force: bool) -> None:
        sid = short_id(image.id)
        running = [c for c in users if c.state.running]
        if running:
            raise Conflict(f"conflict: unable to delete {sid} (cannot be forced) - image is "
                           f"being used by running container {short_id(running[0].id)}")
        if self.store.children(image.id):
            raise Conflict(f"conflict: unable to delete {sid} (cannot be forced) - image has "
                           "dependent child images")
        if users and not force:
            raise Conflict(f"conflict: unable to delete {sid} (must be forced) - image is being"
                           f" used by stopped container {short_id(users[0].id)}")
        if len([t for t in image.tags if "@" not in t]) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {sid} (must be forced) - image is "
                           "referenced in multiple repositories")

    # -- new images from old ones -------------------------------------------------------
    def derive(self, base: Image | None, run_config: dict[str, Any],
               history_entry: dict[str, Any], *, upper: Path | None = None, author: str = "",
               extra: dict[str, Any] | None = None, mtime_clamp: int | None = None) -> Image:
        """A child of ``base`` (None: scratch) with ``run_config``, one more history entry and,
        if ``upper`` is given, one more layer made from that directory's changes."""
        base = base or _empty_base()
        entry = dict(history_entry)
        with self.store.lock:
            diff_ids = list(base.diff_ids)
            if upper is not None:
                with tempfile.TemporaryFile(dir=self.paths.tmp) as spool:
                    write_layer_tar(upper, spool, mtime_clamp=mtime_clamp)
                    spool.seek(0)
                    diff_ids.append(self.store.add_layer(spool, base.chain_id).diff_id)
            else:
                entry["empty_layer"] = True
            history = [*(base.config.get("history") or []), entry]
            config = new_config(run_config, diff_ids, history, now_rfc3339(), author=author,
                                architecture=base.config.get("architecture", "amd64"))
            config.update(extra or {})
            return self.store.create(config, parent=base.id)

    # -- commit -------------------------------------------------------------------------
    def commit(self, rec: ContainerRecord, repo: str, tag: str, *, author: str = "",
               comment: str = "", changes: list[str] | None = None,
               config_override: dict[str, Any] | None = None) -> Image:
        from dockyard.engine.dockerfile_changes import apply_changes
        base = self.store.get(rec.image_id)
        if base is None:
            raise NotFound(f"No such image: {rec.image_id}")
        run_config = _commit_config(base.run_config, rec.config, config_override)
        run_config = apply_changes(run_config, changes or [])
        entry = {"created": now_rfc3339(), "created_by": " ".join([rec.path, *rec.args]),
                 **({"author": author} if author else {}),
                 **({"comment": comment} if comment else {})}
        image = self.derive(base, run_config, entry, upper=self.paths.container(rec.id) / "upper",
                            author=author, extra={"container": rec.id})
        if repo:
            self.store.tag(image.id, reference.parse(repo + (f":{tag}" if tag else "")))
        self.events.publish("container", "commit", rec.id, comment=comment,
                            imageID=image.id, name=rec.name)
        return image


def _empty_base() -> Image:
    """What ``FROM scratch`` derives from: no layers, no history."""
    return Image(id="", config={"architecture": "amd64", "os": "linux", "config": {},
                                "rootfs": {"type": "layers", "diff_ids": []}, "history": []},
                 manifest_digest="", created=0.0, size=0)


def _chains(image: Image) -> list[str]:
    from dockyard.types.digest import chain_ids
    return chain_ids(image.diff_ids)


_COMMIT_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
                "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
                "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels",
                "StopSignal", "Shell")


def _commit_config(image_cfg: dict[str, Any], container_cfg: dict[str, Any],
                   override: dict[str, Any] | None) -> dict[str, Any]:
    merged = {k: container_cfg.get(k) for k in _COMMIT_KEYS if k in container_cfg}
    merged["Image"] = ""
    for key, value in (override or {}).items():
        if value not in (None, "", [], {}):
            merged[key] = value
    return merged

