"""``docker pull``: fetch an image from an OCI distribution registry into the image store.

Tag → manifest (an OCI index / Docker manifest list picks the wanted platform) → config
(digest checked) → layers. Missing layers are downloaded in parallel into temp files (their
compressed digest checked while they stream), then unpacked in order under the store lock
with their diffIDs checked against the config; the image is created from the config's exact
bytes and tagged. ``progress`` gets Docker's JSON-stream messages.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dockyard.distribution.registry_client import RegistryClient, Repository
from dockyard.distribution.registry_ops import Manifest, fetch_manifest, open_blob
from dockyard.distribution.tarindex import HashingReader, check_blob
from dockyard.errors import Forbidden, InvalidArgument, NotFound, Unauthorized
from dockyard.image.model import DOCKER_MANIFEST, OCI_MANIFEST, Image
from dockyard.image.store import ImageStore
from dockyard.types.digest import chain_ids, is_digest
from dockyard.types.reference import Reference

Progress = Callable[[dict[str, Any]], None]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CHUNK = 1 << 20
WORKERS = 3


@dataclass(frozen=True)
class PullResult:
    image: Image
    repo_digest: str  # digest of the manifest (or index) the reference resolved to
    updated: bool  # False when the reference already pointed to this image


@dataclass(frozen=True)
class _LayerDesc:
    digest: str
    size: int | None
    diff_id: str
    chain_id: str

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[-1][:12]


def pull(store: ImageStore, ref: Reference, client: RegistryClient, progress: Progress,
         platform: str = "linux/amd64", tmp_dir: Path | None = None) -> Image:
    """Pull ``ref`` and return the image; see :func:`pull_image`."""
    return pull_image(store, ref, client, progress, platform, tmp_dir).image


def pull_image(store: ImageStore, ref: Reference, client: RegistryClient, progress: Progress,
               platform: str = "linux/amd64", tmp_dir: Path | None = None,
               record_digest: bool = True) -> PullResult:
    """Pull ``ref``; tag it; with ``record_digest`` also store ``repo@sha256:…`` as a ref."""
    say = _locked(progress)
    repo = client.repository(ref)
    top = _top_manifest(repo, ref, client)
    # like moby, nothing is said before the registry answered: a refusal can still be the
    # API call's status (see api/routes/images.py)
    say({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest or "latest"})
    manifest = _platform_manifest(repo, top.body, top.media_type, platform, ref)
    config_raw, config = _fetch_config(repo, manifest)
    layers = _layer_descs(manifest, config)
    work = Path(tempfile.mkdtemp(prefix="pull-", dir=tmp_dir))
    try:
        image = _store_image(store, repo, layers, config_raw, config, work, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _finish(store, ref, image, top.digest, say, record_digest)


def _locked(progress: Progress) -> Progress:
    lock = threading.Lock()

    def say(message: dict[str, Any]) -> None:
        with lock:
            progress(message)
    return say


def _top_manifest(repo: Repository, ref: Reference, client: RegistryClient) -> Manifest:
    try:
        return fetch_manifest(repo, ref.digest or ref.tag or "latest", ACCEPT, _missing(ref))
    except (Unauthorized, Forbidden) as exc:
        # moby: the registry's DENIED (a 403, or a Bearer challenge's insufficient_scope) is
        # "pull access denied", a not-found; other refusals stay what they are
        denied = isinstance(exc, Forbidden) or ": denied: " in f": {exc.message}"
        if client.credentials is not None and not denied:
            raise
        text = (f"pull access denied for {ref.familiar_repository}, repository does not exist "
                f"or may require 'docker login': {exc.message}")
        raise (NotFound(text) if denied else Unauthorized(text)) from None


def _missing(ref: Reference) -> str:
    return f"manifest for {ref.familiar()} not found"


def _platform_manifest(repo: Repository, body: bytes, media_type: str, platform: str,
                       ref: Reference) -> dict[str, Any]:
    doc = json.loads(body)
    if media_type not in INDEX_TYPES and "manifests" not in doc:
        return _check_manifest(doc, media_type)
    want = platform.split("/")
    for entry in doc.get("manifests") or []:
        plat = entry.get("platform") or {}
        have = [plat.get("os", ""), plat.get("architecture", ""), plat.get("variant", "")]
        if have[:2] == want[:2] and (len(want) < 3 or have[2] == want[2]):
            child = fetch_manifest(repo, entry["digest"], ACCEPT, _missing(ref))
            return _check_manifest(json.loads(child.body), child.media_type)
    raise NotFound(f"no matching manifest for {platform} in the manifest list entries")


def _check_manifest(doc: Any, media_type: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported manifest (media type {media_type!r}, "
                              "schema 1 and others are not supported)")
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
        raise InvalidArgument("invalid manifest: no config or layers")
    return doc


def _fetch_config(repo: Repository, manifest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    digest = str(manifest["config"].get("digest", ""))
    if not is_digest(digest):
        raise InvalidArgument(f"invalid config digest {digest!r}")
    with open_blob(repo, digest) as resp:
        hashed = HashingReader(resp)  # type: ignore[arg-type]
        raw = hashed.read(64 << 20)
    check_blob(digest, hashed.digest, manifest["config"].get("size"), hashed.size)
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    return raw, config


def _layer_descs(manifest: dict[str, Any], config: dict[str, Any]) -> list[_LayerDesc]:
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    layers = manifest["layers"]
    if len(diff_ids) != len(layers):
        raise InvalidArgument(f"image has {len(layers)} layers but its config lists "
                              f"{len(diff_ids)} diff ids")
    out = []
    for layer, diff_id, chain in zip(layers, diff_ids, chain_ids(diff_ids)):
        digest = str(layer.get("digest", ""))
        if not is_digest(digest) or not is_digest(diff_id):
            raise InvalidArgument(f"invalid layer digest {digest!r} / diff id {diff_id!r}")
        out.append(_LayerDesc(digest, layer.get("size"), diff_id, chain))
    return out


def _present(store: ImageStore, layer: _LayerDesc) -> bool:
    return store.content.exists(layer.diff_id) and store.snapshots.get(layer.chain_id) is not None


def _store_image(store: ImageStore, repo: Repository, layers: list[_LayerDesc],
                 config_raw: bytes, config: dict[str, Any], work: Path,
                 say: Progress) -> Image:
    missing = [layer for layer in layers if not _present(store, layer)]
    for layer in layers:
        status = "Pulling fs layer" if layer in missing else "Already exists"
        say({"status": status, "progressDetail": {}, "id": layer.short})
    files: dict[str, Path] = {}
    if missing:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures: dict[str, Future[Path]] = {}
            for layer in missing:
                if layer.digest not in futures:
                    futures[layer.digest] = pool.submit(_download, repo, layer, work, say)
            files = {digest: future.result() for digest, future in futures.items()}
    with store.lock:
        try:
            _apply(store, layers, missing, files, say)
            return store.create(config, raw=config_raw)
        except BaseException:
            store.gc()  # drop the layers this pull unpacked for nothing
            raise


def _apply(store: ImageStore, layers: list[_LayerDesc], missing: list[_LayerDesc],
           files: dict[str, Path], say: Progress) -> None:
    parent = ""
    for layer in layers:
        if layer in missing and not _present(store, layer):
            _extract(store, layer, files[layer.digest], parent, say)
        elif layer in missing:
            say({"status": "Pull complete", "progressDetail": {}, "id": layer.short})
        parent = layer.chain_id


def _download(repo: Repository, layer: _LayerDesc, work: Path, say: Progress) -> Path:
    path = work / layer.digest.split(":", 1)[1]
    with open_blob(repo, layer.digest) as resp, open(path, "wb") as out:
        total = layer.size or int(resp.header("Content-Length") or 0)
        hashed = HashingReader(resp)  # type: ignore[arg-type]
        _copy(hashed, out, total, layer.short, say)
    say({"status": "Verifying Checksum", "progressDetail": {}, "id": layer.short})
    check_blob(layer.digest, hashed.digest, layer.size, hashed.size)
    say({"status": "Download complete", "progressDetail": {}, "id": layer.short})
    return path


def _copy(source: HashingReader, out: IO[bytes], total: int, short: str,
          say: Progress) -> None:
    current = 0
    while chunk := source.read(CHUNK):
        out.write(chunk)
        current += len(chunk)
        say({"status": "Downloading", "progressDetail": {"current": current, "total": total},
             "id": short})


def _extract(store: ImageStore, layer: _LayerDesc, path: Path, parent: str,
             say: Progress) -> None:
    size = path.stat().st_size
    say({"status": "Extracting", "progressDetail": {"current": 0, "total": size},
         "id": layer.short})
    with open(path, "rb") as blob:
        added = store.add_layer(blob, parent)
    if added.diff_id != layer.diff_id:
        raise InvalidArgument(f"layer {layer.digest}: diff id mismatch: the image config "
                              f"says {layer.diff_id}, its content is {added.diff_id}")
    say({"status": "Extracting", "progressDetail": {"current": size, "total": size},
         "id": layer.short})
    say({"status": "Pull complete", "progressDetail": {}, "id": layer.short})


def _finish(store: ImageStore, ref: Reference, image: Image, repo_digest: str,
            say: Progress, record_digest: bool) -> PullResult:
    name = ref if ref.tag else Reference(ref.domain, ref.path, None, ref.digest)
    old = store.find(str(name))
    updated = old is None or old.id != image.id
    store.tag(image.id, name)
    if record_digest and ref.tag:
        store.tag(image.id, Reference(ref.domain, ref.path, None, repo_digest))
    say({"status": f"Digest: {repo_digest}"})
    if updated:
        say({"status": f"Status: Downloaded newer image for {ref.familiar()}"})
    else:
        say({"status": f"Status: Image is up to date for {ref.familiar()}"})
    return PullResult(store.get(image.id) or image, repo_digest, updated)
