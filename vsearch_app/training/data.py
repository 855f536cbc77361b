"""Reading captioned image datasets for training and evaluation, and reporting what is wrong with them.

Two formats:
- a folder with ``captions.jsonl`` (or the .jsonl file itself): one JSON object per line,
  ``{"image": "relative/path.jpg", "captions": ["...", ...]}``, paths relative to the file's folder;
- the Karpathy-split JSON used for COCO and Flickr30k (``dataset_coco.json``): ``{"images": [{"filepath": ...,
  "filename": ..., "split": "train|val|test|restval", "sentences": [{"raw": ...}, ...]}, ...]}``, with images under
  an image root folder (default: the JSON file's folder); ``filepath`` (COCO's ``val2014`` ...) is joined when given.

Problems (malformed line, missing field, empty caption list, missing image file) are collected, each naming the file
and line (for Karpathy JSON, the entry index), and handled by the ``on_bad_data`` policy:
- ``"stop"`` (the default) raises ``BadDataError`` listing all of them, before any training time is spent: a typo in
  a caption file silently dropping 10 % of a dataset would change the result without anyone knowing;
- ``"skip"`` drops the bad entries and logs every one of them as a warning, plus a count.
Images that exist but do not decode are found later, when they are read; they follow the same policy there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vsearch_app.errors import InvalidArgumentError

log = logging.getLogger(__name__)

BAD_DATA_POLICIES = ("stop", "skip")
CAPTIONS_FILE = "captions.jsonl"
MAX_LISTED_ISSUES = 20


class BadDataError(InvalidArgumentError):
    """The dataset has entries that cannot be used and the policy is to stop."""


@dataclass(frozen=True)
class DataIssue:
    where: str  # "path/to/captions.jsonl:12"
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(frozen=True)
class CaptionedImage:
    image: Path
    captions: tuple[str, ...]
    where: str  # file:line of the entry, for messages about this image later on


@dataclass
class CaptionDataset:
    items: list[CaptionedImage]
    source: str
    issues: list[DataIssue] = field(default_factory=list)

    @property
    def n_captions(self) -> int:
        return sum(len(item.captions) for item in self.items)


def check_policy(on_bad_data: str) -> None:
    if on_bad_data not in BAD_DATA_POLICIES:
        raise InvalidArgumentError(f"--on-bad-data must be one of {', '.join(BAD_DATA_POLICIES)}, not {on_bad_data!r}")


def handle_issues(issues: Sequence[DataIssue], on_bad_data: str, *, total: int, what: str = "entries") -> None:
    """Apply the bad-data policy: raise listing the issues ("stop"), or log each one ("skip"). Never silent."""
    if not issues:
        return
    if on_bad_data == "stop":
        listed = "\n".join(f"  {issue}" for issue in issues[:MAX_LISTED_ISSUES])
        more = f"\n  ... and {len(issues) - MAX_LISTED_ISSUES} more" if len(issues) > MAX_LISTED_ISSUES else ""
        raise BadDataError(
            f"{len(issues)} of {total} {what} cannot be used:\n{listed}{more}\n"
            "Fix them, or pass --on-bad-data skip to leave them out (each one is still reported)."
        )
    for issue in issues:
        log.warning("skipping %s", issue)
    log.warning("skipped %d of %d %s because of the problems above", len(issues), total, what)


def _clean_captions(value: object) -> tuple[list[str], str | None]:
    if not isinstance(value, list):
        return [], "\"captions\" must be a list of strings"
    captions = [c.strip() for c in value if isinstance(c, str) and c.strip()]
    if len(captions) != len(value):
        return [], "\"captions\" must contain only non-empty strings"
    if not captions:
        return [], "empty caption list"
    return captions, None


def read_captions_jsonl(path: Path) -> CaptionDataset:
    """Parse a captions.jsonl file; problems are collected in ``issues``, not raised."""
    root = path.parent
    items: list[CaptionedImage] = []
    issues: list[DataIssue] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: cannot read the caption file ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.append(DataIssue(where, f"malformed JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(entry, dict):
            issues.append(DataIssue(where, "expected a JSON object with \"image\" and \"captions\""))
            continue
        image = entry.get("image")
        if not isinstance(image, str) or not image.strip():
            issues.append(DataIssue(where, "missing \"image\" (a path relative to the caption file)"))
            continue
        captions, problem = _clean_captions(entry.get("captions"))
        if problem:
            issues.append(DataIssue(where, f"{problem} for {image}"))
            continue
        image_path = root / image
        if not image_path.is_file():
            issues.append(DataIssue(where, f"image file not found: {image_path}"))
            continue
        items.append(CaptionedImage(image_path, tuple(captions), where))
    return CaptionDataset(items, str(path), issues)


def read_karpathy_json(path: Path, splits: Sequence[str], image_root: Path | None = None) -> CaptionDataset:
    """Parse a Karpathy-split JSON file, keeping the entries of ``splits``."""
    root = image_root or path.parent
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: cannot read the dataset file ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise BadDataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); the whole file is unusable") from exc
    entries = document.get("images") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise BadDataError(f"{path}: not a Karpathy-split file (expected an object with an \"images\" list)")
    items: list[CaptionedImage] = []
    issues: list[DataIssue] = []
    found_splits: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}:images[{index}]"
        if not isinstance(entry, dict):
            issues.append(DataIssue(where, "expected an object"))
            continue
        found_splits.add(str(entry.get("split")))
        if entry.get("split") not in splits:
            continue
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            issues.append(DataIssue(where, "missing \"filename\""))
            continue
        sentences = entry.get("sentences")
        raw = None
        if isinstance(sentences, list):
            raw = [s.get("raw") if isinstance(s, dict) else None for s in sentences]
        captions, problem = _clean_captions(raw)
        if problem:
            issues.append(DataIssue(where, f"{problem.replace('captions', 'sentences')} for {filename}"))
            continue
        filepath = entry.get("filepath")
        image_path = root / filepath / filename if isinstance(filepath, str) and filepath else root / filename
        if not image_path.is_file():
            issues.append(DataIssue(where, f"image file not found: {image_path}"))
            continue
        items.append(CaptionedImage(image_path, tuple(captions), where))
    if not items and not issues:
        raise InvalidArgumentError(
            f"{path}: no entries in split(s) {', '.join(splits)}; the file has {', '.join(sorted(found_splits))}"
        )
    return CaptionDataset(items, str(path), issues)


def load_dataset(
    data: str | Path,
    *,
    splits: Sequence[str] = ("test",),
    image_root: str | Path | None = None,
    on_bad_data: str = "stop",
) -> CaptionDataset:
    """Read DATA (a folder with captions.jsonl, a .jsonl file, or a Karpathy .json file) and apply the policy."""
    check_policy(on_bad_data)
    path = Path(data).expanduser()
    if path.is_dir():
        path = path / CAPTIONS_FILE
        if not path.is_file():
            raise InvalidArgumentError(
                f"{data}: no {CAPTIONS_FILE} in this folder. Give a folder with {CAPTIONS_FILE} "
                "(one {\"image\": ..., \"captions\": [...]} per line) or a Karpathy-split .json file."
            )
    elif not path.is_file():
        raise InvalidArgumentError(f"dataset {data} does not exist")
    if path.suffix == ".json":
        dataset = read_karpathy_json(path, splits, Path(image_root).expanduser() if image_root else None)
    else:
        dataset = read_captions_jsonl(path)
    handle_issues(dataset.issues, on_bad_data, total=len(dataset.items) + len(dataset.issues))
    if not dataset.items:
        raise BadDataError(f"{path}: no usable entries")
    return dataset
