"""kb.uploads, the one uploads module of the API and the admin page: one name rule, limits in bytes,
content checks through the formats registry, staging that leaves nothing behind on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb import uploads
from kb.errors import (
    CorruptDocumentError,
    EmptyDocumentError,
    FileTooLargeError,
    TooManyFilesError,
    UnsupportedFormatError,
)
from kb.settings import Settings, mb_bytes


def test_limits_are_bytes_from_one_unit(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, max_file_mb=2, api_max_upload_mb=0.5, api_max_unpacked_mb=5, api_max_files=3)
    assert mb_bytes(1) == 1_000_000
    assert uploads.UploadLimits.for_admin(s).max_bytes == 2_000_000
    api = uploads.UploadLimits.for_api(s)
    assert (api.max_bytes, api.max_unpacked_bytes, api.max_files) == (500_000, 5_000_000, 3)
    api.check_size("a.md", 500_000)
    with pytest.raises(FileTooLargeError, match=r"over the 0\.5 MB limit") as e:
        api.check_size("a.md", 500_001)
    assert "KB_API_MAX_UPLOAD_MB" in e.value.hint
    with pytest.raises(TooManyFilesError, match="at most 3"):
        api.check_count(4)


@pytest.mark.parametrize(
    ("name", "data", "error", "words"),
    [
        ("a.exe", b"MZ", UnsupportedFormatError, "unsupported"),
        ("a.md", b"", EmptyDocumentError, "empty"),
        ("a.txt", b" \n ", EmptyDocumentError, "no text"),
        ("a.pdf", b"hello", CorruptDocumentError, "not a PDF"),
        ("a.md", b"%PDF-1.7\n", CorruptDocumentError, "PDF"),
    ],
)
def test_refused_uploads_leave_nothing(tmp_path: Path, name: str, data: bytes, error: type, words: str) -> None:
    root = tmp_path / "uploads"
    batch = uploads.new_batch(root, "acme")
    with pytest.raises(error, match=words):
        uploads.stage_bytes(data, batch / name, uploads.UploadLimits(max_bytes=1000))
    assert not list(root.rglob("*.*"))


def test_staging_and_discard_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    batch = uploads.new_batch(root, "acme")
    a = uploads.stage_bytes(b"# A\n\ntext\n", batch / "0" / "a.md", uploads.UploadLimits(max_bytes=1000))
    b = uploads.stage_bytes(b"# B\n\ntext\n", batch / "1" / "b.md", uploads.UploadLimits(max_bytes=1000))
    outside = tmp_path / "keep.md"
    outside.write_text("mine")
    uploads.discard(outside, root)  # outside the root: never touched
    uploads.discard(root, root)  # the root itself: never removed
    assert outside.exists() and root.is_dir()
    uploads.discard(a.parent, root)  # a's folder goes; the batch stays while b is in it
    assert not a.exists() and b.exists()
    uploads.discard(b, root)  # the last file: its now-empty folders go too, up to the root
    assert not batch.exists() and root.is_dir()


def test_clean_name_is_one_rule() -> None:
    assert uploads.clean_name("ｅｖｉｌ／..／ｎａｍｅ.md").startswith("name~")  # fullwidth slashes fold first
    assert uploads.clean_name("..\\../x.md") == "x.md"
    assert uploads.clean_name("報告.md") == "報告.md"  # letters of any script stay
    assert uploads.clean_name(None).startswith("upload~")
