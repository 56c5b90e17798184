"""Audio-payload fingerprints: the same for a file however it is tagged, named or moved.

A tagger (e.g. MusicBrainz Picard) rewrites a file's tag blocks, and with them its bytes,
but leaves the audio alone. `fingerprint` hashes only the parts of the container that carry
or define the audio, found from the container's structure (nothing is decoded), so a
retagged file keeps its ID and exact audio copies still share one.

What is hashed, by container (known from the first bytes, not the extension):
- MP3 / ADTS AAC: all between the leading ID3v2 tags (and zero padding after them) and the
  trailing APEv2, Lyrics3v2, ID3v1 (and Enhanced TAG) and appended ID3v2 tags.
- FLAC (also behind an ID3v2 tag): STREAMINFO and the frames; no other metadata block.
- Ogg (Vorbis, Opus, FLAC, ...): per logical stream, every packet but the comment header(s),
  with the packet lengths and the last granule position. Page headers are not hashed: their
  CRCs and sequence numbers change when a comment packet changes size.
- WAV: the `fmt ` and `data` chunks. AIFF / AIFC: `COMM` and `SSND`.
- MP4 / M4A: each track's sample description (`stsd`) and the `mdat` payloads.
Anything else, and any file whose structure does not parse, is hashed whole (as before).
A parsed file's digest is personalised with its container's name, so that a payload digest
and a whole-file digest never coincide.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import BinaryIO

from mfs.store.provenance import feed_file

CHUNK = 1 << 20  # read size: big files are streamed, never held in memory
NO_GRANULE = (1 << 64) - 1  # an Ogg page on which no packet ends
OGG_PAGE = struct.Struct("<4sBBQIIIB")  # capture, version, flags, granule, serial, seq, crc, n
OGG_MAX_PAGE = OGG_PAGE.size + 255 + 255 * 255
MP4_CONTAINERS = frozenset({b"trak", b"mdia", b"minf", b"stbl"})  # moov's way down to stsd

# A piece of what is hashed: literal bytes, or (offset, length) of a range of the file.
Piece = bytes | tuple[int, int]


class Malformed(Exception):
    """The structure is not what the file's first bytes promise: hash the whole file."""


def fingerprint(path: Path) -> str:
    """BLAKE2b-128 (hex) of the file's audio payload, tags left out (see the module doc).

    Raises OSError when the file cannot be read; never for what it contains.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            digest = _payload_digest(handle, size)
        except (Malformed, ValueError, IndexError, OverflowError, struct.error):
            digest = None
        if digest is None:
            digest = _whole_file_digest(handle)
    return digest.hexdigest()


def _payload_digest(handle: BinaryIO, size: int):
    """The digest of the audio payload, or None for a container not parsed here."""
    head = _read_at(handle, 0, 12)
    if head[:4] == b"fLaC":
        return _flac(handle, 0, size)
    if head[:4] == b"OggS":
        return _ogg(handle, size)
    if head[:4] == b"RIFF" and head[8:] == b"WAVE":
        return _chunks(handle, size, "little", (b"fmt ", b"data"), b"wav")
    if head[:4] == b"FORM" and head[8:] in (b"AIFF", b"AIFC"):
        return _chunks(handle, size, "big", (b"COMM", b"SSND"), b"aiff")
    if head[4:8] == b"ftyp":
        return _mp4(handle, size)
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return _mpeg(handle, size)
    return None


# --- MPEG audio (MP3, ADTS AAC): tags before and after a bare stream of frames ---

def _mpeg(handle: BinaryIO, size: int):
    start = _after_id3v2(handle, 0, size)
    if _read_at(handle, start, 4) == b"fLaC":  # a FLAC file some tagger put an ID3 tag on
        return _flac(handle, start, size)
    end = _before_trailing_tags(handle, start, size)
    return _hash(handle, b"mpeg", [(start, end - start)])


def _after_id3v2(handle: BinaryIO, pos: int, size: int) -> int:
    """Skip leading ID3v2 tags, and the zero padding some taggers leave after one."""
    while (header := _read_at(handle, pos, 10))[:3] == b"ID3":
        pos = _skip_zeros(handle, pos + _id3v2_length(header), size)
    return pos


def _id3v2_length(header: bytes) -> int:
    """The whole tag's length from its 10-byte header (or footer): header + body + footer."""
    if len(header) < 10 or header[3] == 0xFF or header[4] == 0xFF:
        raise Malformed("bad ID3v2 header")
    footer = 10 if header[3] >= 4 and header[5] & 0x10 else 0
    return 10 + _synchsafe(header[6:10]) + footer


def _synchsafe(raw: bytes) -> int:
    if any(byte & 0x80 for byte in raw):
        raise Malformed("bad synchsafe integer")
    return raw[0] << 21 | raw[1] << 14 | raw[2] << 7 | raw[3]


def _skip_zeros(handle: BinaryIO, pos: int, size: int) -> int:
    if pos > size:
        raise Malformed("ID3v2 tag runs past the end")
    handle.seek(pos)
    while chunk := handle.read(1 << 16):
        rest = chunk.lstrip(b"\0")
        pos += len(chunk) - len(rest)
        if rest:
            break
    return pos


def _before_trailing_tags(handle: BinaryIO, start: int, end: int) -> int:
    """Where the stream ends: before any APEv2, Lyrics3v2, ID3v1 and appended ID3v2 tags,
    which taggers stack in any order."""
    while True:
        length = _trailing_tag_length(handle, start, end)
        if not length:
            return end
        if length > end - start:
            raise Malformed("trailing tag longer than the file")
        end -= length


def _trailing_tag_length(handle: BinaryIO, start: int, end: int) -> int:
    tail = _read_at(handle, max(start, end - 128), min(128, end - start))
    if len(tail) == 128 and tail[:3] == b"TAG":  # ID3v1, maybe with an Enhanced TAG before
        enhanced = end - 355 >= start and _read_at(handle, end - 355, 4) == b"TAG+"
        return 128 + (227 if enhanced else 0)
    if tail[-32:-24] == b"APETAGEX":
        body, flags = struct.unpack("<I4xI", tail[-20:-8])
        if body < 32:
            raise Malformed("APEv2 tag shorter than its footer")
        return body + (32 if flags & 0x80000000 else 0)  # the footer is counted in `body`
    if tail[-9:] == b"LYRICS200" and tail[-15:-9].isdigit():
        length = int(tail[-15:-9]) + 15
        if _read_at(handle, end - length, 11) != b"LYRICSBEGIN":
            raise Malformed("Lyrics3v2 size does not lead to its start")
        return length
    if tail[-10:-7] == b"3DI":  # an ID3v2.4 tag appended with a footer
        return _id3v2_length(b"ID3" + tail[-7:])
    return 0


# --- FLAC: STREAMINFO defines the audio; every other metadata block is a tag or padding ---

def _flac(handle: BinaryIO, start: int, size: int):
    pos, last, pieces = start + 4, False, []
    while not last:
        header = _read_exact(handle, pos, 4)
        last, kind, length = header[0] & 0x80, header[0] & 0x7F, int.from_bytes(header[1:], "big")
        if kind == 127 or (kind == 0) != (pos == start + 4):
            raise Malformed("STREAMINFO is not the one first metadata block")
        if kind == 0:
            pieces.append((pos + 4, length))
        pos += 4 + length
    frame = _read_at(handle, pos, 2)
    if len(frame) < 2 or frame[0] != 0xFF or frame[1] & 0xFE != 0xF8:
        raise Malformed("no FLAC frame after the metadata")
    return _hash(handle, b"flac", [*pieces, (pos, size - pos)])


# --- Ogg: hash packets, not pages ---

class _OggStream:
    """One logical stream's packets, hashed as they arrive page by page."""

    def __init__(self) -> None:
        self.data = hashlib.blake2b(digest_size=16)  # the packets' bytes
        # Packet lengths as lacing values: a packet's run of lacing values is the same
        # however the packets are split into pages.
        self.lacing = hashlib.blake2b(digest_size=16)
        self.packet = 0  # the index of the packet the next segment belongs to
        self.continued = False  # whether that packet began on an earlier page
        self.skip = {1}  # comment header(s): always the second packet
        self.headers = 1  # the last of them
        self.first = bytearray()  # the identification header, which names the codec
        self.granule = NO_GRANULE

    def add_page(self, flags: int, granule: int, lacing: bytes, body: bytes) -> None:
        if bool(flags & 1) != self.continued:
            raise Malformed("Ogg page continuation does not match the packets before it")
        if self.packet > self.headers:  # past the headers: the page is all audio
            self.data.update(body)
            self.lacing.update(lacing)
            self.packet += len(lacing) - lacing.count(255)
        else:
            self._add_header_segments(lacing, body)
        if lacing:
            self.continued = lacing[-1] == 255
        if granule != NO_GRANULE:
            self.granule = granule

    def _add_header_segments(self, lacing: bytes, body: bytes) -> None:
        offset = 0
        for index, value in enumerate(lacing):
            segment = body[offset:offset + value]
            offset += value
            if self.packet not in self.skip:
                self.data.update(segment)
                self.lacing.update(lacing[index:index + 1])
            if self.packet == 0:
                self.first += segment
            if value < 255:
                if self.packet == 0:
                    self.skip = _ogg_comment_packets(bytes(self.first))
                    self.headers = max(self.skip)
                self.packet += 1

    @property
    def has_audio(self) -> bool:
        return self.granule not in (0, NO_GRANULE)  # header pages have granule 0

    def digest(self) -> bytes:
        return self.data.digest() + self.lacing.digest() + self.granule.to_bytes(8, "little")


def _ogg_comment_packets(first: bytes) -> set[int]:
    """The header packets that hold tags. Ogg FLAC's first packet says how many header
    packets follow (comments, pictures, padding): all are tags, STREAMINFO is in the first."""
    if first[:5] != b"\x7fFLAC":
        return {1}
    count = int.from_bytes(first[7:9], "big")
    if count == 0:
        raise Malformed("Ogg FLAC without a header packet count")
    return set(range(1, count + 1))


def _ogg(handle: BinaryIO, size: int):
    streams: list[_OggStream] = []
    open_streams: dict[int, _OggStream] = {}
    for header, lacing, body in _ogg_pages(handle):
        capture, version, flags, granule, serial, _seq, _crc, _count = header
        if capture != b"OggS" or version != 0:
            raise Malformed("not an Ogg page where one should start")
        if flags & 2:  # beginning of a stream (a chained file begins several)
            open_streams[serial] = _OggStream()
            streams.append(open_streams[serial])
        stream = open_streams.get(serial)
        if stream is None:
            raise Malformed("Ogg page of a stream that never began")
        stream.add_page(flags, granule, lacing, body)
        if flags & 4:  # end of the stream
            del open_streams[serial]
    if not any(stream.has_audio for stream in streams):  # (a Skeleton stream has none)
        raise Malformed("no Ogg stream with audio")
    digest = _new(b"ogg")
    for stream in streams:
        digest.update(stream.digest())
    return digest


def _ogg_pages(handle: BinaryIO):
    """(header fields, lacing values, body) of each page in turn. Pages are a few kB, so
    they are cut from CHUNK-sized reads into one reused buffer (three reads per page, or a
    fresh buffer per read, cost a third of the time): `body` is valid until the next page."""
    buffer = bytearray(CHUNK + OGG_MAX_PAGE)
    view = memoryview(buffer)
    handle.seek(0)
    pos = filled = 0
    while True:
        end = pos + OGG_PAGE.size
        if end <= filled:
            header = OGG_PAGE.unpack_from(buffer, pos)
            lacing = bytes(view[end:end + header[-1]])
            body_end = end + header[-1] + sum(lacing)
            if len(lacing) == header[-1] and body_end <= filled:
                yield header, lacing, view[end + header[-1]:body_end]
                pos = body_end
                continue
        buffer[:filled - pos] = buffer[pos:filled]  # the start of a page cut by the read
        filled -= pos
        pos = 0
        count = handle.readinto(view[filled:filled + CHUNK])
        if not count:
            if filled:
                raise Malformed("Ogg page cut short")
            return
        filled += count


# --- RIFF (WAV) and IFF (AIFF): a flat list of chunks ---

def _chunks(handle: BinaryIO, size: int, byteorder: str, keep: tuple[bytes, ...], kind: bytes):
    """Hash the `keep` chunks (header and body, in file order); skip the rest. The last of
    `keep` holds the audio (SSND after 8 bytes of offsets): it must not be empty."""
    pos, pieces, found = 12, [], {}
    while pos + 8 <= size:
        header = _read_exact(handle, pos, 8)
        length = int.from_bytes(header[4:], byteorder)
        if pos + 8 + length > size:
            raise Malformed(f"{header[:4]!r} chunk runs past the end")
        if header[:4] in keep:
            if header[:4] in found:
                raise Malformed(f"two {header[:4]!r} chunks")
            found[header[:4]] = length
            pieces += [header, (pos + 8, length)]
        pos += 8 + length + (length & 1)  # chunks are padded to an even length
    if len(found) < len(keep) or found[keep[-1]] <= 8:
        raise Malformed("no audio chunk, or an empty one")
    return _hash(handle, kind, pieces)


# --- MP4: a tree of atoms; audio in mdat, its codec setup in stsd ---

def _mp4(handle: BinaryIO, size: int):
    descriptions: list[Piece] = []
    payloads: list[Piece] = []
    for kind, body, end in _atoms(handle, 0, size):
        if kind == b"mdat" and end > body:
            payloads += [b"mdat" + (end - body).to_bytes(8, "big"), (body, end - body)]
        elif kind == b"moov":
            descriptions += _sample_descriptions(handle, body, end)
    if not payloads or not descriptions:
        raise Malformed("MP4 without sample descriptions or media data")
    return _hash(handle, b"mp4", descriptions + payloads)


def _sample_descriptions(handle: BinaryIO, start: int, end: int) -> list[Piece]:
    found: list[Piece] = []
    for kind, body, stop in _atoms(handle, start, end):
        if kind == b"stsd":
            found += [b"stsd" + (stop - body).to_bytes(8, "big"), (body, stop - body)]
        elif kind in MP4_CONTAINERS:
            found += _sample_descriptions(handle, body, stop)
    return found


def _atoms(handle: BinaryIO, pos: int, end: int):
    """(type, body start, end) of each atom in [pos, end)."""
    while pos + 8 <= end:
        header = _read_exact(handle, pos, 8)
        length, body = int.from_bytes(header[:4], "big"), pos + 8
        if length == 1:  # a 64-bit length follows the type
            length, body = int.from_bytes(_read_exact(handle, body, 8), "big"), body + 8
        elif length == 0:  # to the end of the enclosing atom (or file)
            length = end - pos
        if length < body - pos or pos + length > end:
            raise Malformed(f"{header[4:]!r} atom of a bad length")
        yield header[4:], body, pos + length
        pos += length


# --- reading and hashing ---

def _new(kind: bytes):
    return hashlib.blake2b(digest_size=16, person=b"mfs-audio:" + kind)


def _hash(handle: BinaryIO, kind: bytes, pieces: list[Piece]):
    """Hash `pieces` in order, streaming file ranges in CHUNK-sized reads."""
    digest = _new(kind)
    if not any(isinstance(piece, tuple) and piece[1] > 0 for piece in pieces):
        raise Malformed("no audio payload")
    buffer = memoryview(bytearray(CHUNK))
    for piece in pieces:
        if isinstance(piece, bytes):
            digest.update(piece)
            continue
        offset, length = piece
        handle.seek(offset)
        while length > 0:
            count = handle.readinto(buffer[:min(length, CHUNK)])
            if not count:
                raise Malformed("file shorter than its structure says (changed while read?)")
            digest.update(buffer[:count])
            length -= count
    return digest


def _whole_file_digest(handle: BinaryIO):
    """BLAKE2b-128 of all the file's bytes, the fallback (and the fingerprint before tags
    were left out)."""
    return feed_file(hashlib.blake2b(digest_size=16), handle)


def _read_at(handle: BinaryIO, pos: int, count: int) -> bytes:
    """Up to `count` bytes at `pos` (fewer at the end of the file)."""
    if pos < 0 or count < 0:
        raise Malformed("offset before the start of the file")
    handle.seek(pos)
    return handle.read(count)


def _read_exact(handle: BinaryIO, pos: int, count: int) -> bytes:
    data = _read_at(handle, pos, count)
    if len(data) < count:
        raise Malformed("structure runs past the end of the file")
    return data
