"""A person's own music folders: any depth, any common format, labels from tags."""

from __future__ import annotations

from collections.abc import Iterator

import mutagen

from mfs.libraries.base import Candidate, LibraryKind
from mfs.libraries.files import FileEntry, WalkProblem, walk_audio_files

TAG_FIELDS = {"artist": "artist", "album": "album", "title": "title", "genre": "genre"}


class FolderLibrary(LibraryKind):
    kind = "folder"
    content_ids = True
    labels_need_file = True

    def candidates(self) -> Iterator[Candidate | WalkProblem]:
        for item in walk_audio_files(self.root):
            yield item if isinstance(item, WalkProblem) else Candidate(item, None)

    def labels_from_file(self, entry: FileEntry) -> dict:
        """artist/album/title/genre from the file's tags; missing tags stay None."""
        try:
            tags = mutagen.File(entry.path, easy=True)
        except Exception:  # noqa: BLE001 - a bad tag block only costs the labels
            return {}
        if tags is None or tags.tags is None:
            return {}
        labels = {}
        for key, field in TAG_FIELDS.items():
            values = tags.tags.get(key) or []
            labels[field] = str(values[0]).strip() or None if values else None
        genre = labels.get("genre")
        labels["genres"] = [genre] if genre else []
        return labels
