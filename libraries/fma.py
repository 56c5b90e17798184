"""FMA: audio at `fma_<size>/NNN/NNNNNN.mp3`, labels from `fma_metadata/tracks.csv`.

`genres` are `track.genres_all` as titles (every genre of the track with all their
ancestors) and `genre_levels` each one's level in genres.csv's tree (1 = top level), so a
benchmark can label tracks at any level (`mfs bench --label level2`).

tracks.csv has two header rows (column group, column) and a third naming the index; fields
may contain quoted newlines (artist bios), so it is read with the csv module, and any row
with the wrong number of fields is an error naming the file and line.
"""

from __future__ import annotations

import ast
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mfs.libraries.base import Candidate, LibraryKind, named_candidates, normalise_split
from mfs.libraries.files import FileEntry, WalkProblem

FMA_NAME = re.compile(r"^\d{6}$")
SUBSET_ORDER = ("small", "medium", "large")
REQUIRED = {
    ("track", "genre_top"), ("track", "genres_all"), ("set", "split"), ("set", "subset"),
    ("artist", "id"),
}
WANTED = REQUIRED | {("artist", "name"), ("album", "title"), ("track", "title")}


class MetadataError(ValueError):
    """A malformed FMA metadata file; the message names the file and line."""


class FmaLibrary(LibraryKind):
    kind = "fma"

    def __init__(self, root: Path, metadata_dir: Path | None = None) -> None:
        super().__init__(root)
        metadata_dir = metadata_dir or find_metadata_dir(root)
        genres = read_genres(metadata_dir / "genres.csv")
        self.tracks = read_tracks_csv(metadata_dir / "tracks.csv", genres)
        self.size = subset_of_folder(root)

    def candidates(self) -> Iterator[Candidate | WalkProblem]:
        return named_candidates(self.root, FMA_NAME, "an FMA name like 000/000002.mp3",
                                self._candidate)

    def _candidate(self, entry: FileEntry, match: re.Match) -> Candidate:
        key = str(int(match[0]))
        return Candidate(entry, key, self.tracks.get(key, {"genres": []}))

    def listed_without_audio(self, found_keys: set[str]) -> list[tuple[str, dict]]:
        wanted = SUBSET_ORDER[: SUBSET_ORDER.index(self.size) + 1] if self.size else None
        return [
            (key, labels)
            for key, labels in self.tracks.items()
            if key not in found_keys and (wanted is None or labels.get("subset") in wanted)
        ]


def find_metadata_dir(root: Path) -> Path:
    for candidate in (root / "fma_metadata", root.parent / "fma_metadata", root):
        if (candidate / "tracks.csv").exists():
            return candidate
    raise FileNotFoundError(
        f"{root}: no fma_metadata/tracks.csv beside the audio; pass --metadata DIR"
    )


def subset_of_folder(root: Path) -> str | None:
    """`fma_small` → 'small': which tracks the metadata says this folder should hold."""
    match = re.match(r"^fma_(small|medium|large)$", root.name)
    return match[1] if match else None


@dataclass(frozen=True)
class Genre:
    title: str
    level: int  # 1 = a top-level genre, 2 = its child, … (genres.csv's parent links)


def read_genres(path: Path) -> dict[int, Genre]:
    """Genre id → title and level in FMA's genre tree."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        try:
            rows = {int(row["genre_id"]): (row["title"], int(row["parent"] or 0))
                    for row in reader}
        except UnicodeDecodeError:
            raise MetadataError(f"{path}: not valid UTF-8 text") from None
        except (KeyError, ValueError, TypeError) as error:
            raise MetadataError(f"{path}:{reader.line_num}: bad genres row ({error})") from None
    return {genre_id: Genre(title, _level(path, rows, genre_id)) for genre_id, (title, _)
            in rows.items()}


def _level(path: Path, rows: dict[int, tuple[str, int]], genre_id: int) -> int:
    level, parent, seen = 1, rows[genre_id][1], {genre_id}
    while parent:
        if parent in seen or parent not in rows:
            raise MetadataError(f"{path}: genre {genre_id}'s parents loop or name an unknown "
                                f"genre ({parent})")
        seen.add(parent)
        level, parent = level + 1, rows[parent][1]
    return level


def read_tracks_csv(path: Path, genres: dict[int, Genre]) -> dict[str, dict]:
    """Track ID → labels, from FMA's two-header-row tracks.csv."""
    # Undecodable bytes are kept as surrogates so the error can name their exact line.
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        line = 1  # first physical line of the record being read, for error messages
        try:
            groups, names = next(reader), next(reader)
            next(reader)  # the "track_id,,,," index-name row
            columns = _column_positions(path, groups, names)
            tracks = {}
            line = reader.line_num + 1
            for row in reader:
                _check_utf8(path, line, row)
                if len(row) != len(groups):
                    raise MetadataError(
                        f"{path}:{line}: expected {len(groups)} fields, got {len(row)}")
                tracks[row[0]] = _labels(path, line, row, columns, genres)
                line = reader.line_num + 1
        except StopIteration:
            raise MetadataError(f"{path}: too short for tracks.csv's three header rows") from None
        except csv.Error as error:
            raise MetadataError(f"{path}:{line}: not readable as CSV ({error})") from None
    return tracks


def _check_utf8(path: Path, line: int, row: list[str]) -> None:
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{path}:{line}: not valid UTF-8 text") from None


def _column_positions(path: Path, groups: list[str], names: list[str]) -> dict:
    positions = {}
    for index, (top, name) in enumerate(zip(groups, names, strict=False)):
        if (top, name) in WANTED:
            positions[(top, name)] = index
    missing = REQUIRED - positions.keys()
    if missing:
        names_missing = ", ".join(f"{a}.{b}" for a, b in sorted(missing))
        raise MetadataError(f"{path}:2: missing columns {names_missing}")
    return positions


def _labels(path: Path, line: int, row: list[str], columns: dict,
            genres: dict[int, Genre]) -> dict:
    def get(key: tuple[str, str]) -> str | None:
        value = row[columns[key]] if key in columns else ""
        return value or None

    text = get(("track", "genres_all")) or "[]"
    try:
        genre_ids = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        genre_ids = None
    if not isinstance(genre_ids, list) or not all(type(g) is int for g in genre_ids):
        raise MetadataError(f"{path}:{line}: genres_all {text!r} is not a list of genre ids")
    return {
        "genre": get(("track", "genre_top")),
        "genres": [genres[g].title if g in genres else str(g) for g in genre_ids],
        # An id genres.csv lacks has no known place in the tree: level 0, never a level label.
        "genre_levels": [genres[g].level if g in genres else 0 for g in genre_ids],
        "split": normalise_split(get(("set", "split"))),
        "subset": get(("set", "subset")),
        "artist_id": get(("artist", "id")),
        "artist": get(("artist", "name")),
        "album": get(("album", "title")),
        "title": get(("track", "title")),
    }
