"""What every library kind tells the scanner: which files are tracks, their IDs and labels."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mfs.libraries.files import FileEntry, WalkProblem, walk_audio_files

LABEL_FIELDS = ("genre", "genres", "genre_levels", "split", "subset", "artist", "artist_id",
                "album", "title")

SPLIT_NAMES = {"train": "train", "training": "train", "valid": "validation",
               "validation": "validation", "val": "validation", "test": "test"}


@dataclass
class Candidate:
    """One audio file the library kind recognises as a track."""

    entry: FileEntry
    track_key: str | None  # ID suffix; None means "derive it from the file's content"
    labels: dict = field(default_factory=dict)


class LibraryKind:
    """Base of the GTZAN, FMA and folder scanners."""

    kind: str = ""
    labels_need_file: bool = False  # labels are read from the file (tags), not the layout

    def __init__(self, root: Path) -> None:
        self.root = root

    def candidates(self) -> Iterator[Candidate | WalkProblem]:
        raise NotImplementedError

    def labels_from_file(self, entry: FileEntry) -> dict:
        """Labels that need the file opened (tags); only called for new or changed files."""
        return {}

    def listed_without_audio(self, found_keys: set[str]) -> list[tuple[str, dict]]:
        """Tracks the metadata lists but no audio file was found for: (key, labels)."""
        return []


def named_candidates(root: Path, pattern: re.Pattern, example: str,
                     make: Callable[[FileEntry, re.Match], Candidate],
                     ) -> Iterator[Candidate | WalkProblem]:
    """Audio files under `root` whose stem matches a dataset's naming `pattern`.

    Files named otherwise are not the dataset's tracks: each becomes an `UnexpectedFile`
    problem (so the user sees it) instead of a track with a made-up ID.
    """
    for item in walk_audio_files(root):
        if isinstance(item, WalkProblem):
            yield item
            continue
        match = pattern.match(Path(item.rel).name.rsplit(".", 1)[0])
        if match:
            yield make(item, match)
        else:
            yield WalkProblem(item.rel, "UnexpectedFile", f"not {example}; skipped")


def normalise_split(value: str | None) -> str | None:
    if value is None:
        return None
    return SPLIT_NAMES.get(value.strip().lower(), value.strip().lower())
