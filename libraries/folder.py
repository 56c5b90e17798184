"""A person's own music folders: any depth, any common format, labels from tags."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import mutagen
from mutagen.aac import AAC
from mutagen.aiff import AIFF
from mutagen.easymp4 import EasyMP4
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp3 import EasyMP3
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from mfs.libraries.base import Candidate, LibraryKind
from mfs.libraries.files import FileEntry, WalkProblem, walk_audio_files

TAG_FIELDS = {"artist": "artist", "album": "album", "title": "title", "genre": "genre"}
# WAV and AIFF carry plain ID3 frames: mutagen's easy keys exist only for MP3.
ID3_FRAMES = {"artist": "TPE1", "album": "TALB", "title": "TIT2", "genre": "TCON"}
# The tag readers to try first for each extension. Left to itself mutagen scores the file
# against all of its ~25 formats, which was half the cost of a first scan; a file whose
# extension lies still gets the full search.
TAG_READERS = {
    ".mp3": [EasyMP3], ".flac": [FLAC], ".ogg": [OggVorbis, OggOpus, OggFLAC],
    ".oga": [OggVorbis, OggOpus, OggFLAC], ".opus": [OggOpus], ".m4a": [EasyMP4],
    ".aac": [AAC, EasyMP4], ".wav": [WAVE], ".aiff": [AIFF], ".aif": [AIFF],
}


class FolderLibrary(LibraryKind):
    kind = "folder"
    labels_need_file = True

    def candidates(self) -> Iterator[Candidate | WalkProblem]:
        for item in walk_audio_files(self.root):
            yield item if isinstance(item, WalkProblem) else Candidate(item, None)

    def labels_from_file(self, entry: FileEntry) -> dict:
        """artist/album/title/genre from the file's tags; missing tags stay None."""
        tags = None
        readers = TAG_READERS.get(os.path.splitext(entry.rel)[1].lower())
        if readers:
            with contextlib.suppress(Exception):
                tags = mutagen.File(entry.path, options=readers)
        try:
            if tags is None:  # not `or`: a file without tags is falsy
                tags = mutagen.File(entry.path, easy=True)
        except Exception:  # noqa: BLE001 - a bad tag block only costs the labels
            return {}
        if tags is None or tags.tags is None:
            return {}
        labels = {}
        for key, field in TAG_FIELDS.items():
            values = _tag_values(tags.tags, key)
            labels[field] = str(values[0]).strip() or None if values else None
        genre = labels.get("genre")
        labels["genres"] = [genre] if genre else []
        return labels


def _tag_values(tags, key: str) -> list:
    if isinstance(tags, ID3):
        frame = tags.get(ID3_FRAMES[key])
        if frame is None:
            return []
        return frame.genres if key == "genre" else list(frame.text)
    return tags.get(key) or []
