"""Filters over the catalog's photo facts (core.types.SearchFilter) and the orders a result list can take.

A filter becomes one SQL condition on ``files`` (see ``FilterSQL``): capture date range, folders, camera, pixel count
and orientation; every clause is on columns the catalog already holds, the date one on an indexed column. The
engine (core/library/library.py) asks for the ids it allows *before* ranking, so a narrow filter still returns its
best matches instead of the few of the global top k that happen to pass it.

Dates: ``taken_after`` is inclusive and ``taken_before`` exclusive; both take "2019", "2019-06", "2019-06-01" or a
full ISO date-time, and the short forms mean the start of that year, month or day ("--before 2020-06": taken before
1 June 2020). Capture times are local ISO 8601 text ("2019-06-01T14:22:01", core/library/photo_metadata.py), so
a range is a plain text comparison that SQLite answers from the ``files_captured_at`` index. A photo whose
metadata has not been read yet (the backfill is still running) has no capture time and is outside every date range.

Cameras: the filter is a case-insensitive substring of "make model" as ``camera_display`` writes it. The match is
made in Python over the library's few distinct cameras (SQLite's ``lower`` folds ASCII only; the distinct cameras
come from the ``files_camera`` index, schema v6), and the SQL then asks for those cameras' keys through that index.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from vsearch_app.core.library.photo_metadata import camera_display
from vsearch_app.core.store.catalog import Catalog, path_key, subtree_bounds
from vsearch_app.core.store.schema import CAMERA_KEY
from vsearch_app.core.types import SearchFilter, SortOrder
from vsearch_app.errors import InvalidArgumentError

ORIENTATIONS = ("landscape", "portrait", "square")
_DATE_FORMS = re.compile(r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?)?)?$")
# Rows a filter or a browse may return: photos that have a vector (the same rows a search ranks).
_SEARCHABLE = "files.state = 'indexed'"


def normalise_date(text: str | None, param: str) -> str | None:
    """"2019" -> "2019-01-01", "2019-06" -> "2019-06-01", "2019-06-01 10:00" -> "2019-06-01T10:00:00"; a
    malformed or impossible date raises InvalidArgumentError naming ``param``."""
    if text is None:
        return None
    raw = str(text).strip()
    if not _DATE_FORMS.match(raw):
        raise InvalidArgumentError(f"{text!r} is not a date; write it as 2019, 2019-06 or 2019-06-01", param=param)
    padded = raw + "-01-01"[len(raw) - 4:] if len(raw) < 10 else raw  # "2019" and "2019-06": the first day
    try:
        moment = datetime.fromisoformat(padded.replace(" ", "T"))
    except ValueError:
        raise InvalidArgumentError(f"{text!r} is not a real date", param=param) from None
    if len(raw) <= 10:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")


def check_filter(filters: SearchFilter | None) -> SearchFilter | None:
    """The filter with its dates in canonical form and its folders absolute, or InvalidArgumentError (``param``:
    "taken_after", "taken_before", "camera", "min_pixels", "orientation", "folder") for a value it cannot mean.
    None or an empty filter gives None."""
    if filters is None or filters.is_empty:
        return None
    after = normalise_date(filters.taken_after, "taken_after")
    before = normalise_date(filters.taken_before, "taken_before")
    if after is not None and before is not None and after >= before:
        raise InvalidArgumentError(f"the date range is empty: taken after {after} (inclusive) and before {before}",
                                   param="taken_before")
    camera = filters.camera.strip() if filters.camera is not None else None
    if camera is not None and not camera:
        raise InvalidArgumentError("the camera filter is empty; give part of a camera's name", param="camera")
    if filters.min_pixels is not None and (not isinstance(filters.min_pixels, int) or filters.min_pixels < 1):
        raise InvalidArgumentError(f"the minimum pixel count must be a whole number of at least 1, got "
                                   f"{filters.min_pixels}", param="min_pixels")
    orientation = filters.orientation.strip().lower() if filters.orientation is not None else None
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InvalidArgumentError(f"unknown orientation {filters.orientation!r}; use one of "
                                   f"{', '.join(ORIENTATIONS)}", param="orientation")
    folders = tuple(Path(os.path.abspath(os.path.expanduser(os.fspath(f)))) for f in filters.folders)
    return replace(filters, taken_after=after, taken_before=before, camera=camera, orientation=orientation,
                   folders=folders)


@dataclass(frozen=True)
class FilterSQL:
    """``where`` (a condition on the ``files`` table, always including that the photo is searchable) and its
    ``params``."""

    where: str
    params: tuple


def filter_sql(catalog: Catalog, filters: SearchFilter | None) -> FilterSQL:
    """The SQL condition of a checked filter (``check_filter``); None: every searchable photo."""
    clauses, params = [_SEARCHABLE], []
    if filters is None:
        return FilterSQL(clauses[0], ())
    if filters.taken_after is not None:
        clauses.append("files.captured_at >= ?")
        params.append(filters.taken_after)
    if filters.taken_before is not None:
        clauses.append("files.captured_at < ?")
        params.append(filters.taken_before)
    if filters.folders:
        ranges = []
        for folder in filters.folders:
            key = path_key(folder)
            lo, hi = subtree_bounds(key)
            ranges.append("(files.path = ? OR (files.path >= ? AND files.path < ?))")
            params += [key, lo, hi]
        clauses.append("(" + " OR ".join(ranges) + ")")
    if filters.camera is not None:
        keys = [key for key, _ in matching_cameras(catalog, filters.camera)]
        clauses.append(f"{CAMERA_KEY} IN ({','.join('?' * len(keys))})" if keys else "0")
        params += keys
    if filters.min_pixels is not None:
        clauses.append("files.width * files.height >= ?")
        params.append(int(filters.min_pixels))
    if filters.orientation == "landscape":
        clauses.append("files.width > files.height")
    elif filters.orientation == "portrait":
        clauses.append("files.width < files.height")
    elif filters.orientation == "square":
        clauses.append("files.width = files.height")
    return FilterSQL(" AND ".join(clauses), tuple(params))


# The distinct camera keys, found by hopping through the files_camera index (a few seeks per camera, however
# many photos): SQLite has no skip scan for DISTINCT, and a full pass over a million rows takes most of a second.
_DISTINCT_CAMERAS = f"""
WITH RECURSIVE cams(k) AS (
    SELECT min({CAMERA_KEY}) FROM files WHERE {CAMERA_KEY} > char(31)
    UNION ALL
    SELECT (SELECT min({CAMERA_KEY}) FROM files WHERE {CAMERA_KEY} > cams.k) FROM cams WHERE cams.k IS NOT NULL
)
SELECT k FROM cams WHERE k IS NOT NULL
"""


def camera_keys(catalog: Catalog) -> list[str]:
    """The CAMERA_KEY of every camera in the catalog (rows of any state)."""
    return [key for (key,) in catalog.query(_DISTINCT_CAMERAS)]


def camera_name(key: str) -> str | None:
    make, _, model = key.partition("\x1f")
    return camera_display(make or None, model or None)


def matching_cameras(catalog: Catalog, text: str) -> list[tuple[str, str]]:
    """(key, display name) of the cameras whose display name contains ``text``, ignoring case."""
    wanted = text.casefold()
    named = [(key, camera_name(key)) for key in camera_keys(catalog)]
    return [(key, name) for key, name in named if name and wanted in name.casefold()]


def cameras(catalog: Catalog) -> list[tuple[str, int]]:
    """"Make Model" display names with their searchable photos, most photos first (then by name); two spellings
    that normalise alike are counted together."""
    counts: dict[str, int] = {}
    for key in camera_keys(catalog):
        name = camera_name(key)
        n = catalog.query(f"SELECT count(*) FROM files WHERE {CAMERA_KEY} = ? AND {_SEARCHABLE}", (key,))[0][0]
        if name and n:
            counts[name] = counts.get(name, 0) + n
    return sorted(counts.items(), key=lambda item: (-item[1], item[0].casefold()))


def photo_months(catalog: Catalog, filters: SearchFilter | None) -> list[tuple[str, int]]:
    """("2019-06", n) per capture month of the searchable photos the filter allows, oldest first."""
    where = filter_sql(catalog, check_filter(filters))
    rows = catalog.query(
        f"SELECT substr(captured_at, 1, 7) AS month, count(*) FROM files WHERE {where.where} "
        "AND captured_at IS NOT NULL GROUP BY month ORDER BY month",
        where.params,
    )
    return [(month, n) for month, n in rows]


def allowed_ids(catalog: Catalog, filters: SearchFilter | None) -> np.ndarray:
    """Sorted ids (int64) of the searchable photos a checked filter allows."""
    where = filter_sql(catalog, filters)
    rows = catalog.query(f"SELECT id FROM files WHERE {where.where} ORDER BY id", where.params)
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def filtered_embeddings(catalog: Catalog, model_id: str, filters: SearchFilter | None,
                        dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the ``model_id`` embeddings of the photos a checked filter allows, in one query: an exact
    filtered search reads them here (a 768-d vector from SQLite costs a few microseconds, from hnswlib ~100)."""
    where = filter_sql(catalog, filters)
    rows = catalog.query(
        f"SELECT e.file_id, e.vector FROM embeddings e JOIN files ON files.id = e.file_id "
        f"WHERE e.model_id = ? AND e.content_version = files.content_version AND {where.where} ORDER BY e.file_id",
        (model_id, *where.params),
    )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
    return ids, vectors.astype(np.float32, copy=False)


def sort_keys(catalog: Catalog, ids: np.ndarray) -> dict[int, tuple[str, bytes]]:
    """file id -> (capture time or "", path bytes) for ordering by date or name."""
    keys: dict[int, tuple[str, bytes]] = {}
    for fid, captured, key in catalog.query_in("SELECT id, captured_at, path FROM files WHERE id IN ({marks})",
                                               (int(i) for i in ids)):
        keys[fid] = (captured or "", key)
    return keys


def order_ids(catalog: Catalog, ids: np.ndarray, sort: SortOrder) -> np.ndarray:
    """``ids`` in ``sort`` order. DATE: newest capture first, photos without a capture time last, ties by path;
    NAME: file name (ignoring case), then folder. Both are total orders, so the result never depends on the order
    ``ids`` came in (the date order is stable across runs and pages)."""
    keys = sort_keys(catalog, ids)
    present = [int(i) for i in ids if int(i) in keys]
    if sort == SortOrder.NAME:
        def by_name(fid: int) -> tuple:
            key = keys[fid][1]
            name = os.path.basename(key)
            return name.decode("utf-8", "replace").casefold(), name, key

        present.sort(key=by_name)
    else:
        # newest first, then path ascending: sort by path, then (stably) by date descending
        present.sort(key=lambda fid: keys[fid][1])
        present.sort(key=lambda fid: keys[fid][0], reverse=True)
        dated = [fid for fid in present if keys[fid][0]]
        present = dated + [fid for fid in present if not keys[fid][0]]
    return np.asarray(present, dtype=np.int64)


def browse_ids(catalog: Catalog, filters: SearchFilter | None, sort: SortOrder) -> np.ndarray:
    """Every searchable photo the filter allows, in ``sort`` order (SCORE means DATE: there is no score)."""
    ids = allowed_ids(catalog, filters)
    return order_ids(catalog, ids, SortOrder.DATE if sort == SortOrder.SCORE else sort)
