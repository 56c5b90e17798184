"""GTZAN: `genres/<genre>/<genre>.000NN.<ext>`, with the fault-filtered split lists shipped
in `gtzan_splits/` (README there) unless the user names other lists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from mfs.libraries.base import Candidate, LibraryKind, named_candidates, normalise_split
from mfs.libraries.files import FileEntry, WalkProblem

GTZAN_NAME = re.compile(r"^(?P<genre>[a-z]+)\.(?P<number>\d{5})$")
# The fault-filtered lists: the default split, since a random split of GTZAN leaks.
SHIPPED_SPLITS = Path(__file__).resolve().parent / "gtzan_splits"


class GtzanLibrary(LibraryKind):
    kind = "gtzan"

    def __init__(self, root: Path, split_dir: Path | None = None) -> None:
        super().__init__(root)
        # Tracks the lists leave out (GTZAN's faulty ones) have no split: benchmarks on
        # the official split never see them.
        self.splits = read_split_lists(split_dir or SHIPPED_SPLITS)

    def candidates(self) -> Iterator[Candidate | WalkProblem]:
        return named_candidates(self.root, GTZAN_NAME, "a GTZAN name like blues.00012.au",
                                self._candidate)

    def _candidate(self, entry: FileEntry, match: re.Match) -> Candidate:
        stem, genre = match[0], match["genre"]
        return Candidate(entry, stem, {"genre": genre, "genres": [genre],
                                       "split": self.splits.get(stem)})


def read_split_lists(split_dir: Path) -> dict[str, str]:
    """Map track stem → split from `<split>_filtered.txt` style lists (`blues/blues.00012.wav`).

    Prefers the fault-filtered lists when a folder holds several families of lists.
    """
    files = sorted(split_dir.glob("*_filtered.txt")) or sorted(split_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{split_dir}: no split lists (*_filtered.txt) found")
    splits: dict[str, str] = {}
    for path in files:
        split = normalise_split(path.stem.split("_")[0])
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            stem = Path(line).name.rsplit(".", 1)[0]
            if not GTZAN_NAME.match(stem):
                raise ValueError(f"{path}:{number}: not a GTZAN track like blues/blues.00012.wav")
            splits[stem] = split
    return splits
