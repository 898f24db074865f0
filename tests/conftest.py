from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offline and quiet for every test: no telemetry look-ups, no hub downloads.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_clip_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.tiny_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def model_env(tiny_clip_files: tuple[Path, Path]) -> dict[str, str]:
    """Settings (as env vars) for a tiny random CLIP checkpoint + the real bundled MiniLM."""
    cfg, ckpt = tiny_clip_files
    return {
        "KB_CLIP_MODEL": "glyph-tiny-clip",
        "KB_CLIP_PRETRAINED": str(ckpt),
        "KB_CLIP_MODEL_CONFIG": str(cfg),
        "KB_TEXT_MODEL": "minilm-bundled",
        "KB_DEVICE": "cpu",
    }


@pytest.fixture(scope="session")
def shared_embedders(model_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Models load once per session; every KnowledgeBase in the tests reuses them."""
    from kb.settings import Settings
    from kb.signals.configured import build_embedders
    from tests.tiny_models import settings_fields

    return build_embedders(Settings(**settings_fields(model_env)))


@pytest.fixture()
def kb_settings(tmp_path: Path, model_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from kb.settings import Settings
    from tests.tiny_models import settings_fields

    return Settings(data_dir=tmp_path / "data", **settings_fields(model_env))
