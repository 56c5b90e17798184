"""Bad input never stops a scan: each bad file is a failure row, and a track row where it
has an ID; odd but valid names are stored exactly as they are."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import content_id, failures, scan, tracks, write_audio

from mfs.store import Store

ODD_NAMES = [
    "🎵 emoji 🎸.flac",
    "שלום עולם.wav",  # right-to-left Hebrew
    "مرحبا بالعالم.ogg",  # right-to-left Arabic
    "Cafe\u0301 NFD.wav",  # e + combining acute accent, not normalised to é
    "Caf\u00e9 NFC.wav",  # the precomposed form: a different name
    "日本語/曲 (ライブ).mp3",
    "zero\u200bwidth & 'quotes' \"double\".wav",
    "\u202eevil-rtl-override.wav",
    "  leading and trailing spaces  .wav",
    "new\nline.wav",
]


def write_bad_files(root: Path) -> dict[str, str]:
    """The bad files of a real music folder; returns path → what must be reported."""
    good = write_audio(root / "good.wav", freq=500)
    (root / "corrupt.flac").write_bytes(os.urandom(6000))
    (root / "header-only.wav").write_bytes(good.read_bytes()[:30])
    flac = write_audio(root / "tmp.flac", seconds=2.0, freq=510)
    (root / "cut-short.flac").write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    flac.unlink()
    (root / "empty.mp3").write_bytes(b"")
    (root / "text.wav").write_text("this is a text file, not audio\n" * 20)
    (root / "image.ogg").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(500))
    (root / "broken.mp3").symlink_to(root / "nowhere.mp3")
    (root / "self-loop.ogg").symlink_to("self-loop.ogg")
    (root / "loop").symlink_to(".")
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "up").symlink_to("../..")
    bad_name = os.fsencode(root) + b"/bad-\xff\xfe.wav"
    with open(bad_name, "wb") as handle:
        handle.write(good.read_bytes())
    os.mkdir(os.fsencode(root) + b"/folder-\xff")
    with open(os.fsencode(root) + b"/folder-\xff/inside.wav", "wb") as handle:
        handle.write(good.read_bytes())
    return {
        "corrupt.flac": "AudioError", "header-only.wav": "AudioError",
        "cut-short.flac": "AudioError", "empty.mp3": "AudioError", "text.wav": "AudioError",
        "image.ogg": "AudioError", "broken.mp3": "BrokenSymlink",
        "self-loop.ogg": "BrokenSymlink", "loop": "SymlinkLoop", "deep/er/up": "SymlinkLoop",
        "bad-\\xff\\xfe.wav": "BadFileName", "folder-\\xff": "BadFileName",
    }


def test_bad_files_are_failures_and_the_scan_goes_on(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    expected = write_bad_files(root)
    summary = scan(store, "mine", "folder", root)
    problems = {f["path"]: f for f in failures(store, "mine")}
    assert {path: f["error_class"] for path, f in problems.items()} == expected
    for failure in problems.values():
        assert failure["reason"] and "\n" not in failure["reason"]
        assert failure["stage"] == "scan" and failure["attempts"] == 1

    found = {row["path"]: row for row in tracks(store, "mine").values()}
    assert found["good.wav"]["status"] == "ok"
    # Files with content have a content ID, so they are also tracks marked unreadable;
    # an empty file has no content to identify it.
    unreadable = {p for p, cls in expected.items() if cls == "AudioError"} - {"empty.mp3"}
    assert {p for p, row in found.items() if row["status"] == "unreadable"} == unreadable
    for path in unreadable:
        assert problems[path]["track_id"] == found[path]["track_id"]
        assert found[path]["track_id"] == content_id("mine", root / path)
        assert found[path]["status_reason"] == problems[path]["reason"]
        assert str(root) not in found[path]["status_reason"]  # relative paths only
    assert "truncated" in found["cut-short.flac"]["status_reason"]
    assert problems["empty.mp3"]["reason"] == "empty.mp3: empty file (0 bytes)"
    assert problems["empty.mp3"]["track_id"] is None
    # The symlink loops were not followed into duplicates of good.wav.
    assert set(found) == {"good.wav", *unreadable}
    assert summary["unreadable"] == len(unreadable) + 1

    # A rescan is just as calm, and does not report the unchanged bad files again.
    again = scan(store, "mine", "folder", root)
    assert again["unchanged"] == len(found)
    assert len(failures(store, "mine")) == len(expected)


def test_bad_files_in_a_gtzan_library_keep_their_ids(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "genres"
    write_audio(root / "blues" / "blues.00000.wav")
    (root / "blues" / "blues.00001.wav").write_bytes(b"")
    (root / "blues" / "blues.00002.au").write_bytes(os.urandom(3000))
    (root / "rock").mkdir()
    (root / "rock" / "rock.00000.wav").symlink_to(root / "gone.wav")
    scan(store, "g", "gtzan", root)
    found = tracks(store, "g")
    assert {k: v["status"] for k, v in found.items()} == {
        "g:blues.00000": "ok", "g:blues.00001": "unreadable", "g:blues.00002": "unreadable"}
    assert found["g:blues.00001"]["genre"] == "blues"
    assert {(f["path"], f["error_class"], f["track_id"]) for f in failures(store)} == {
        ("blues/blues.00001.wav", "AudioError", "g:blues.00001"),
        ("blues/blues.00002.au", "AudioError", "g:blues.00002"),
        ("rock/rock.00000.wav", "BrokenSymlink", None)}


def test_odd_unicode_names_are_stored_exactly(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "music"
    for number, name in enumerate(ODD_NAMES):
        fmt = {"format": "MP3"} if name.endswith(".mp3") else {}
        write_audio(root / name, freq=600 + number, **fmt)
    summary = scan(store, "mine", "folder", root)
    assert summary["new"] == len(ODD_NAMES) and failures(store) == []
    found = {row["path"]: row for row in tracks(store, "mine").values()}
    assert set(found) == set(ODD_NAMES)
    assert all(row["status"] == "ok" for row in found.values())
    nfd = found["Cafe\u0301 NFD.wav"]
    assert nfd["path"] != unicodedata.normalize("NFC", nfd["path"])
    # Stored paths lead back to the files, and a rescan recognises every one unchanged.
    assert all((root / path).is_file() for path in found)
    assert scan(store, "mine", "folder", root)["unchanged"] == len(ODD_NAMES)


@contextlib.contextmanager
def as_user_nobody() -> Iterator[None]:
    """Drop the effective uid (root reads files whatever their mode) for the block."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_files_and_folders(store: Store) -> None:
    # Under a world-readable folder (tmp_path's parents are private to root), so that the
    # scan can run as an unprivileged user and permissions are really enforced.
    base = Path(tempfile.mkdtemp(prefix="mfs-perm-"))
    try:
        base.chmod(0o755)
        root = base / "genres"
        write_audio(root / "blues" / "blues.00000.wav", freq=700)
        locked = write_audio(root / "blues" / "blues.00001.wav", freq=701)
        write_audio(root / "rock" / "rock.00000.wav", freq=702)
        for folder in (base, root, root / "blues", root / "rock"):
            folder.chmod(0o755)
        for path in root.rglob("*.wav"):
            path.chmod(0o644)
        locked.chmod(0o000)
        (root / "rock").chmod(0o000)
        scan(Store(base / "warm-up"), "w", "gtzan", root / "blues")  # lazy imports, as root
        store.root = base / "store"
        store.root.mkdir()
        store.root.chmod(0o777)
        with as_user_nobody():
            if os.access(locked, os.R_OK, effective_ids=True):
                pytest.skip("cannot make a file unreadable here (root without seteuid)")
            scan(store, "g", "gtzan", root)
            scan(store, "f", "folder", root)
        found = tracks(store, "g")
        assert found["g:blues.00000"]["status"] == "ok"
        assert found["g:blues.00001"]["status"] == "unreadable"
        assert "ermission" in found["g:blues.00001"]["status_reason"]
        assert {(f["path"], f["error_class"]) for f in failures(store, "g")} == {
            ("blues/blues.00001.wav", "PermissionError"), ("rock", "PermissionError")}
        # A folder library has no ID for a file it cannot read: a failure row only.
        assert [row["path"] for row in tracks(store, "f").values()] == ["blues/blues.00000.wav"]
        assert {(f["path"], f["error_class"], f["track_id"]) for f in failures(store, "f")} == {
            ("blues/blues.00001.wav", "PermissionError", None), ("rock", "PermissionError", None)}
        # Permissions fixed (mtime unchanged): the next scan reads the file after all.
        locked.chmod(0o644)
        scan(store, "g")
        assert tracks(store, "g")["g:blues.00001"]["status"] == "ok"
    finally:
        for path in (root / "rock", locked):
            path.chmod(0o755)
        shutil.rmtree(base)
