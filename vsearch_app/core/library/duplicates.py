"""Duplicate photos: byte-identical copies (certain) and near-identical shots (bursts, edits, resized exports).

- **exact** groups: files with the same size and content fingerprint (the catalog has both), confirmed by a hash of
  the whole file, so a group is certain. Every copy but one is left out of the near search, which would only find
  them again.
- **near** groups: photos whose stored vectors have cosine similarity >= ``threshold`` (default ``NEAR_THRESHOLD``),
  joined transitively (union-find: A~B and B~C make one group). Pairs come from exact blocks of the similarity
  matrix up to ``EXACT_PAIRS_LIMIT`` photos, and from each photo's ``NEIGHBOURS`` nearest in the vector index
  beyond that. Nothing is embedded again.

Each group is ordered best shot first by ``core/library/photo_quality.py`` (sharpness, exposure and resolution from
the pixels, compared within the group); ``members[0]`` is the suggested keeper and each member's ``similarity`` is
its cosine to the keeper. VSearch never deletes anything: the front ends list, reveal and copy.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vsearch_app.core.library.filters import check_filter, filtered_embeddings
from vsearch_app.core.library.phases import check_cancel
from vsearch_app.core.library.photo_quality import rate_group
from vsearch_app.core.library.search import no_folders_yet
from vsearch_app.core.store.catalog import FileRecord
from vsearch_app.core.types import DuplicateGroup, DuplicateMember, IndexProgress, SearchFilter
from vsearch_app.errors import InvalidArgumentError

# Cosine similarity from which two photos count as near-duplicates. Measured 2026-12-02 on the generated set of
# tests/support/duplicate_scenes.py (12 scenes, each as original, half-size export, JPEG quality 35, 4 % crop and
# blurred copy, among 24 other scenes), embedded by pixel content: same-scene pairs score 0.889-1.0, different
# scenes at most 0.707; pair precision / recall 1.00 / 1.00 at 0.88, 1.00 / 0.97 at 0.90 and 0.92, 1.00 / 0.73 at
# 0.95. 0.92 keeps a margin against distinct but similar shots (two photos of one beach), which a real model puts
# closer together than this embedding does; --threshold changes it.
NEAR_THRESHOLD = 0.92
EXACT_PAIRS_LIMIT = 30_000  # up to this many photos every pair is compared (blocks of a matrix product)
NEIGHBOURS = 16  # beyond it, each photo's nearest in the vector index
_BLOCK = 2048
_HASH_CHUNK = 1 << 20

ProgressFn = Callable[[IndexProgress], None]


def find_duplicates(library, *, folder: str | os.PathLike[str] | None = None, threshold: float | None = None,
                    progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None) -> list[DuplicateGroup]:
    """Exact groups first, then near groups, each list largest group first (see the module docstring)."""
    threshold = NEAR_THRESHOLD if threshold is None else float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise InvalidArgumentError(f"the duplicate threshold is a cosine similarity above 0 and at most 1, got "
                                   f"{threshold}", param="threshold")
    catalog = library.catalog
    filters = None
    if folder is not None:
        folder_path = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
        if catalog.root_for(folder_path) is None:
            raise InvalidArgumentError(f"{folder_path} is not inside a watched folder", param="folder")
        filters = check_filter(SearchFilter(folders=(folder_path,)))
    if not catalog.roots():  # said before the model is looked up, as search does: it may not be downloaded yet
        raise no_folders_yet()
    model_id = library.model_id
    dim = catalog.model_dim(model_id)
    if dim is None:
        return []
    ids, vectors = filtered_embeddings(catalog, model_id, filters, dim)
    records = catalog.files_by_ids(ids.tolist())
    _report(progress, "grouping", 0, len(ids))

    exact = exact_groups([records[i] for i in ids.tolist() if i in records], cancel)
    drop = {fid for group in exact for fid in group[1:]}
    keep = np.asarray([i not in drop for i in ids.tolist()], dtype=bool)
    near_ids, near_vectors = ids[keep], _unit(vectors[keep])
    if len(near_ids) <= EXACT_PAIRS_LIMIT:
        pairs = pairs_by_blocks(near_vectors, threshold, cancel)
    else:
        pairs = pairs_by_index(library.vector_index(create=False), near_ids, near_vectors, threshold, cancel)
    near = [group for group in connected_groups(len(near_ids), pairs) if len(group) > 1]
    _report(progress, "grouping", len(ids), len(ids))

    vector_of = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    unit = _unit(vectors)
    todo = [("exact", group) for group in exact] + [("near", [int(near_ids[i]) for i in g]) for g in near]
    groups = []
    for done, (kind, members) in enumerate(todo):
        check_cancel(cancel, "looking for duplicates")
        groups.append(_ordered_group(kind, [records[i] for i in members], unit, vector_of))
        _report(progress, "rating", done + 1, len(todo))
    groups.sort(key=lambda g: (g.kind != "exact", -len(g.members), os.fsencode(g.members[0].path)))
    return groups


def exact_groups(records: list[FileRecord], cancel: threading.Event | None = None) -> list[list[int]]:
    """Ids of byte-identical files, grouped: same size and fingerprint, then the same hash of the whole file (a
    file that cannot be read now is left out). Each group is sorted by id."""
    by_fingerprint: dict[tuple[int, str], list[FileRecord]] = {}
    for record in records:
        if record.fingerprint:
            by_fingerprint.setdefault((record.size, record.fingerprint), []).append(record)
    groups = []
    for candidates in by_fingerprint.values():
        if len(candidates) < 2:
            continue
        by_hash: dict[str, list[int]] = {}
        for record in candidates:
            check_cancel(cancel, "looking for duplicates")
            digest = file_hash(record.path)
            if digest is not None:
                by_hash.setdefault(digest, []).append(int(record.id))
        groups += [sorted(ids) for ids in by_hash.values() if len(ids) > 1]
    return groups


def file_hash(path: os.PathLike[str] | str) -> str | None:
    digest = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def pairs_by_blocks(unit: np.ndarray, threshold: float, cancel: threading.Event | None = None) -> np.ndarray:
    """Every pair (i < j) of rows of ``unit`` (unit vectors) with a dot product >= ``threshold``, as [n, 2]."""
    found = []
    for start in range(0, len(unit), _BLOCK):
        check_cancel(cancel, "looking for duplicates")
        block = unit[start:start + _BLOCK] @ unit[start:].T  # only j >= start: each pair once
        rows, cols = np.nonzero(block >= threshold)
        rows, cols = rows + start, cols + start
        upper = cols > rows
        found.append(np.stack([rows[upper], cols[upper]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def pairs_by_index(index, ids: np.ndarray, unit: np.ndarray, threshold: float,
                   cancel: threading.Event | None = None) -> np.ndarray:
    """Pairs among ``ids`` from each photo's ``NEIGHBOURS`` nearest in the vector index (for large libraries)."""
    position = {int(fid): i for i, fid in enumerate(ids.tolist())}
    found = []
    for i, vector in enumerate(unit):
        if i % 256 == 0:
            check_cancel(cancel, "looking for duplicates")
        near, scores = index.search(vector, k=NEIGHBOURS)
        for fid, score in zip(near.tolist(), scores.tolist(), strict=True):
            j = position.get(int(fid))
            if j is not None and j != i and score >= threshold:
                found.append((min(i, j), max(i, j)))
    return np.asarray(sorted(set(found)), dtype=np.int64).reshape(-1, 2)


def connected_groups(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Union-find over ``n`` items joined by ``pairs``: the groups (sorted positions), singletons included."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in np.asarray(pairs, dtype=np.int64).reshape(-1, 2).tolist():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _ordered_group(kind: str, records: list[FileRecord], unit: np.ndarray,
                   vector_of: dict[int, int]) -> DuplicateGroup:
    qualities = rate_group([r.path for r in records])
    # Best quality first. Equal quality (identical files): the oldest first, as the original usually predates its
    # copies ("beach.jpg" before "beach copy.jpg"), then the shorter name, then the path, so the order is stable.
    order = sorted(range(len(records)), key=lambda i: (-qualities[i], records[i].mtime_ns,
                                                       len(records[i].path.name), os.fsencode(records[i].path)))
    keeper = unit[vector_of[int(records[order[0]].id)]]
    members = []
    for i in order:
        record = records[i]
        similarity = float(unit[vector_of[int(record.id)]] @ keeper)
        members.append(DuplicateMember(path=record.path, file_id=int(record.id), quality=round(qualities[i], 4),
                                       similarity=round(min(similarity, 1.0), 4), size=int(record.size),
                                       width=record.width, height=record.height))
    return DuplicateGroup(kind=kind, members=members)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _report(progress: ProgressFn | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(IndexProgress(done, total, 0, 0.0, None, phase=phase))
