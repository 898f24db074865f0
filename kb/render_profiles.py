"""Render profiles: a named RenderConfig chosen by `kb tune-render`, with the figures it was chosen on.

Saved as data_dir/render_profiles/<name>.json; `render_profile = "<name>"` in the settings makes it the
render configuration (kb.settings applies it), manifests record it, and `kb reindex` re-renders the
documents drawn with another one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kb.errors import ConfigError
from kb.fsutil import atomic_write_bytes
from kb.settings import RenderConfig, Settings, profile_path


class RenderProfile(BaseModel):
    name: str
    config: RenderConfig
    created: str = ""
    tokenizer: str = ""
    judge: str = ""  # what read the images back (tesseract, a VLM)
    sample: list[str] = Field(default_factory=list)  # the documents it was tuned on
    measured: dict[str, Any] = Field(default_factory=dict)  # compression, recall, per class, order


def save_profile(profile: RenderProfile, settings: Settings) -> Path:
    path = profile_path(profile.name, settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not profile.created:
        profile.created = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_bytes(path, profile.model_dump_json(indent=1).encode())
    return path


def load_profile_file(path: Path) -> RenderProfile:
    try:
        return RenderProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read render profile {path}: {exc}", "run `kb tune-render` to make one") from exc


_SETTING = re.compile(r"^\s*render_profile\s*=.*$", re.MULTILINE)


def activate(name: str, config_file: Path) -> None:
    """Set `render_profile = "<name>"` in a TOML settings file (created if missing), keeping the rest."""
    line = f'render_profile = "{name}"'
    text = config_file.read_text(encoding="utf-8") if config_file.is_file() else ""
    if _SETTING.search(text):
        text = _SETTING.sub(line, text, count=1)
    else:
        # top-level keys must come before the first [table]
        m = re.search(r"^\s*\[", text, re.MULTILINE)
        at = m.start() if m else len(text)
        sep = "" if at == 0 or text[:at].endswith("\n") else "\n"
        text = text[:at] + sep + line + "\n" + text[at:]
    atomic_write_bytes(config_file, text.encode())
