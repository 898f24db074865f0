from pathlib import Path

import pytest

from kb.errors import ConfigError, KbError
from kb.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.data_dir == Path("kb_data")
    assert s.images_dir == Path("kb_data/images")
    assert s.qdrant_url is None


def test_env_prefix_and_nested(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("KB_RENDER__FONT_SIZE", "14")
    monkeypatch.setenv("KB_QDRANT_API_KEY", "s3cret")
    s = load_settings()
    assert s.data_dir == tmp_path / "d"
    assert s.render.font_size == 14
    assert s.qdrant_api_key is not None and "s3cret" not in repr(s)


def test_toml_file_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kb.toml").write_text('data_dir = "from_toml"\nmax_file_mb = 5\n[render]\npage_width = 560\n')
    s = load_settings()
    assert s.data_dir == Path("from_toml") and s.render.page_width == 560 and s.max_file_mb == 5
    monkeypatch.setenv("KB_MAX_FILE_MB", "7")
    assert load_settings().max_file_mb == 7


def test_explicit_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text("[render]\nfont_size = 13\n")
    assert load_settings(cfg).render.font_size == 13
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")


def test_invalid_value_is_a_kb_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_RENDER__FONT_SIZE", "-3")
    with pytest.raises(KbError, match="invalid settings"):
        load_settings()
