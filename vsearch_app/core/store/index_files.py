"""The vector index on disk: its files, how a save commits them, and the checks a file passes before hnswlib loads it.

Per graph (one per shard, see core/store/sharded_index.py) there are two files in the index folder, both named by
the graph's ``slug`` (core/store/vector_index.py's ``model_slug``, plus a shard suffix):

- ``<slug>.manifest.json``: what the graph file holds (model, dimension, space, M, counts, deleted labels, waypoints,
  ``ef``, which hnswlib forgets, and the catalog change counter it reflects) and the file's name, size and SHA-256;
- ``<slug>.<sha16>.hnsw``: the hnswlib graph, named by its content.

Saving (``commit``): hnswlib writes the graph to a temp file in the same folder (the caller does that, under its read
lock); then, without any lock, the file is fsynced, its header, size and checksum are read back from the disk, it is
reloaded with hnswlib (up to a size limit), renamed to its final content-addressed name, the folder is fsynced, and
only then is the manifest replaced (core.store.fsutil.atomic_write_bytes). The manifest replace is the single commit
point: a crash at any moment leaves the old manifest with its old file, or the new manifest with its new file. (This
is why the graph file is not replaced onto a fixed name: that would open a window in which the manifest and the file
disagree, and a 1M-vector rebuild takes minutes.)

Loading (``load``) never hands hnswlib a file it has not checked first: the manifest must name this model, dimension,
space and M, and the file's size and SHA-256 must match, and its header must be consistent with the dimension and M
(hnswlib can crash on a crafted header and loads a wrong dimension silently). Any mismatch raises IndexDamaged; the
index then rebuilds from the catalog. ``remove_stale_files`` deletes graph files no manifest names and temp files of
crashed saves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import hnswlib

from vsearch_app.core.store import fault_points
from vsearch_app.core.store.fsutil import atomic_write_bytes, fsync_dir

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
SPACE = "cosine"  # every graph's space: hnswlib normalises on insert and query, so scores are cosine similarities
STALE_AFTER_S = 600  # leftover files older than this are removed on open
_HEADER = struct.Struct("<6Q i I 3Q d Q")  # hnswlib HierarchicalNSW::saveIndex header (96 bytes)
_LOAD_ATTEMPTS = 3


class IndexDamaged(Exception):
    """Internal: the saved index cannot be trusted (the caller rebuilds)."""


class FileMissing(IndexDamaged):
    """The manifest names a file that is not there (possibly replaced by another process a moment ago)."""


@dataclass(frozen=True)
class LoadedGraph:
    """A graph read from disk after every check passed, and what its manifest says about it."""

    graph: hnswlib.Index
    file: Path
    deleted: set[int]  # labels marked deleted (photos removed since they were added)
    waypoints: int  # hidden waypoints in the graph (core/store/waypoints.py)
    ef: int  # the search breadth saved with it
    catalog_seq: int  # the catalog change counter the graph reflects


def model_slug(model_id: str) -> str:
    """A file-name-safe, collision-free stem for a model id (the graph files' names start with it)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:60] or "model"
    return f"{readable}-{hashlib.sha256(model_id.encode('utf-8')).hexdigest()[:8]}"


def manifest_path(index_dir: Path, slug: str) -> Path:
    return index_dir / f"{slug}.manifest.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_hnsw_header(path: Path, dim: int, M: int, count: int) -> None:
    """Check an hnswlib file's header against what we expect, without hnswlib. Raises IndexDamaged."""
    size = path.stat().st_size
    if size < _HEADER.size:
        raise IndexDamaged(f"file is {size} bytes, shorter than an hnswlib header")
    with open(path, "rb") as fh:
        fields = _HEADER.unpack(fh.read(_HEADER.size))
    (offset_level0, max_elements, cur_count, size_per_element, label_offset, offset_data,
     max_level, _enter, max_m, max_m0, m, _mult, _efc) = fields  # fmt: skip
    links0 = max_m0 * 4 + 4
    expected = {
        "offsetLevel0": (offset_level0, 0),
        "M": (m, M),
        "maxM": (max_m, M),
        "maxM0": (max_m0, 2 * M),
        "offsetData": (offset_data, links0),
        "size_data_per_element": (size_per_element, links0 + 4 * dim + 8),
        "label_offset": (label_offset, links0 + 4 * dim),
        "cur_element_count": (cur_count, count),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise IndexDamaged(f"header field {name} is {got}, expected {want}")
    lowest_level = -1 if cur_count == 0 else 0  # an empty graph has no entry point (level -1)
    if max_elements < cur_count or max_level < lowest_level or max_level > 64:
        raise IndexDamaged("header capacity or level out of range")
    minimum = _HEADER.size + cur_count * (size_per_element + 4)
    if size < minimum:
        raise IndexDamaged(f"file is {size} bytes, the header needs at least {minimum}")


# --- the manifest ---------------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexDamaged("no manifest") from exc
    except (OSError, ValueError) as exc:
        raise IndexDamaged(f"manifest unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexDamaged("manifest is not a JSON object")
    return manifest


def write_manifest(path: Path, manifest: dict) -> None:
    """Replace the manifest atomically and durably: the commit point of a save."""
    atomic_write_bytes(path, json.dumps(manifest, indent=1).encode("utf-8"))


# --- loading --------------------------------------------------------------------------------------------------------


def load(index_dir: Path, slug: str, *, model_id: str, dim: int, M: int) -> LoadedGraph:
    """The saved graph of ``slug``, checked as the module docstring says. Raises IndexDamaged (a missing, damaged or
    unreadable file, or a manifest for another model, dimension or M)."""
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            return _load_checked(index_dir, slug, model_id, dim, M)
        except FileMissing:
            # Another process may have saved (and removed the old file) between our manifest read and the file
            # open: read the manifest again before giving up on it.
            if attempt == _LOAD_ATTEMPTS - 1:
                raise
        except OSError as exc:  # unreadable file or folder: treat like damage, the catalog still has everything
            raise IndexDamaged(f"cannot read it: {exc}") from exc
    raise AssertionError("unreachable")


def _load_checked(index_dir: Path, slug: str, model_id: str, dim: int, M: int) -> LoadedGraph:
    m = read_manifest(manifest_path(index_dir, slug))
    try:
        checks = {
            "format": (m["format"], MANIFEST_FORMAT),
            "model_id": (m["model_id"], model_id),
            "dim": (m["dim"], dim),
            "space": (m["space"], SPACE),
            "M": (m["M"], M),
        }
        for name, (got, want) in checks.items():
            if got != want:
                raise IndexDamaged(f"manifest {name} is {got!r}, expected {want!r}")
        file = index_dir / str(m["file"])
        if file.parent != index_dir or not file.name.startswith(slug + "."):
            raise IndexDamaged(f"manifest names an unexpected file {m['file']!r}")
        count, capacity, size = int(m["count"]), int(m["max_elements"]), int(m["file_size"])
        deleted = {int(x) for x in m["deleted"]}
        ef, seq, sha = int(m["ef"]), int(m["catalog_seq"]), str(m["sha256"])
        waypoints = int(m.get("waypoints", 0))  # absent in manifests written before waypoints existed
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexDamaged(f"manifest incomplete: {exc!r}") from exc
    if not 0 <= waypoints <= count or len(deleted) > count - waypoints:
        raise IndexDamaged(f"manifest counts disagree: {count} entries, {waypoints} waypoints, {len(deleted)} gone")
    try:
        actual_size = file.stat().st_size
    except FileNotFoundError as exc:
        raise FileMissing(f"index file {file.name} is missing") from exc
    if actual_size != size:
        raise IndexDamaged(f"index file is {actual_size} bytes, the manifest says {size}")
    check_hnsw_header(file, dim, M, count)
    if sha256_of(file) != sha:
        raise IndexDamaged("index file checksum does not match the manifest")
    graph = hnswlib.Index(space=SPACE, dim=dim)
    try:
        graph.load_index(str(file), max_elements=max(capacity, count, 1))
    except (RuntimeError, MemoryError, ValueError) as exc:
        raise IndexDamaged(f"hnswlib could not load it: {exc}") from exc
    if graph.dim != dim or graph.element_count != count:
        raise IndexDamaged(f"loaded {graph.element_count} x {graph.dim}, expected {count} x {dim}")
    log.debug("loaded search index %s: %d vectors (%d deleted)", file.name, count, len(deleted))
    return LoadedGraph(graph, file, deleted, waypoints, ef, seq)


# --- saving ---------------------------------------------------------------------------------------------------------


def commit(
    tmp: Path,
    index_dir: Path,
    slug: str,
    manifest: dict,
    *,
    dim: int,
    M: int,
    count: int,
    capacity: int,
    verify_reload_max_bytes: int,
) -> Path:
    """Make the graph hnswlib wrote to ``tmp`` the saved one (see the module docstring) and return its final path.
    ``manifest`` holds what the caller knows of the graph; the file's name, size and SHA-256 are added here.
    Raises OSError, IndexDamaged or RuntimeError, after which the previous save is still the valid one (the caller
    removes ``tmp``)."""
    fault_points.reached("index.mid_save")
    with open(tmp, "rb+") as fh:  # hnswlib does not fsync (and reports no write errors)
        os.fsync(fh.fileno())
    size = tmp.stat().st_size
    check_hnsw_header(tmp, dim, M, count)
    sha = sha256_of(tmp)
    if size <= verify_reload_max_bytes:
        probe = hnswlib.Index(space=SPACE, dim=dim)
        probe.load_index(str(tmp), max_elements=max(capacity, 1))
        if probe.element_count != count or probe.dim != dim:
            raise IndexDamaged(f"reloaded {probe.element_count} x {probe.dim}, wrote {count} x {dim}")
        del probe
    final = index_dir / f"{slug}.{sha[:16]}.hnsw"
    fault_points.reached("index.before_replace")
    os.replace(tmp, final)
    fsync_dir(index_dir)
    fault_points.reached("index.before_manifest")
    write_manifest(manifest_path(index_dir, slug), {**manifest, "file": final.name, "file_size": size, "sha256": sha})
    return final


def remove_stale_files(index_dir: Path, slug: str, keep: set[str]) -> None:
    """Delete our own leftovers of ``slug``: graph files no manifest names and temp files of crashed saves (``keep``:
    the file in use). Files younger than STALE_AFTER_S are left alone: another VSearch process (a CLI search beside a
    running indexer) may be in the middle of a save, and its new file is named by the manifest only at the end."""
    keep = set(keep)
    try:
        keep.add(str(read_manifest(manifest_path(index_dir, slug))["file"]))  # another process may have saved
    except (IndexDamaged, KeyError):
        pass
    now = time.time()
    for candidate in index_dir.iterdir():
        name = candidate.name
        ours = (name.startswith(slug + ".") and name.endswith(".hnsw")) or name.startswith(
            (f".{slug}.hnsw.", f".{slug}.manifest.json.")
        )
        if not ours or name in keep:
            continue
        try:
            if now - candidate.stat().st_mtime < STALE_AFTER_S:
                continue
            log.debug("removing stale index file %s", candidate)
            candidate.unlink()
        except OSError:
            continue
