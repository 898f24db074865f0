"""The fast lane: `kb --help`, bare `kb` and `kb docs [--json]` on the standard library alone.

Importing typer, click, rich and pydantic costs several times the interpreter's own start, and these
commands need none of them. `kb.cli.main` asks `handle()` first; it answers only when it can give exactly
the output of the full path (kb/cli/_app.py), and otherwise returns False so the full path runs:

- help: a snapshot of the root help (help.txt, as click renders it at its maximum width of 78 columns),
  used when the terminal has at least 80 columns, the width at which click renders that same text. A test
  checks the snapshot against the live help; regenerate it with `python -m kb.cli._fast --write-help`.
- `kb docs`: the manifests under data_dir/docs read with json, printed by the view that the typer command
  also uses (kb/cli/_docsview.py). It steps aside for --server/KB_SERVER_URL, --config/KB_CONFIG, a remote
  image store, any KB_* variable or kb.toml key it does not know to be harmless, and anything unexpected
  in the store (a manifest that is not the canonical JSON of a DocumentRecord, an unreadable folder), so
  errors read as they always did.

KB_FAST_LANE=0 turns the fast lane off (the tests compare both paths with it).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs more to import than this whole lane
if TYPE_CHECKING:
    from typing import Any

HELP_FILE = "help.txt"
HELP_WIDTH = 80  # click wraps help at min(terminal columns, 80) - 2: at >= 80 columns the text is fixed
_USAGE = "Usage: kb "

# Settings fields that take any string (no constraint, no validator) and that `kb docs` does not read:
# a KB_* variable or kb.toml key for one of them cannot change or break `kb docs`. tests/test_cli_fast.py
# checks the claim against kb.settings.Settings.
FREE_TEXT_FIELDS = frozenset(
    {
        "text_model", "clip_model", "clip_pretrained", "text_query_prompt", "text_passage_prompt", "device",
        "token_counter", "vlm_backend", "vlm_base_url", "vlm_model", "vlm_api_key", "vlm_device", "vlm_dtype",
        "ocr_languages", "collection", "qdrant_url", "qdrant_api_key", "ui_admin_token", "ui_reader_token",
    }
)  # fmt: skip
# KB_* variables that are not settings (pydantic ignores them); the client and load_settings read them.
NOT_SETTINGS = frozenset({"server_url", "server_key", "config", "fast_lane"})

# The canonical JSON of a manifest (kb.catalog): field -> (type, required). Anything else: the full path.
_STR, _INT, _BOOL, _STRS, _LIST = "str", "int", "bool", "strs", "list"
DOC_FIELDS: dict[str, tuple[str, bool]] = {
    "schema_version": (_INT, False), "doc_id": (_STR, True), "title": (_STR, True), "source_name": (_STR, True),
    "source_path": (_STR, True), "format": (_STR, True), "file_sha256": (_STR, True), "file_bytes": (_INT, True),
    "pages": (_INT + "?", False), "ocr_used": (_BOOL, False), "render_fingerprint": (_STR, True),
    "render_profile": (_STR, False), "tokenizer": (_STR, False), "ingested_at": (_STR, True),
    "tags": (_STRS, False), "warnings": (_STRS, False), "sections": (_LIST, True), "revises": (_STR + "?", False),
}  # fmt: skip
SECTION_FIELDS: dict[str, tuple[str, bool]] = {
    "section_id": (_STR, True), "ordinal": (_INT, True), "part": (_INT, False), "parts": (_INT, False),
    "heading_path": (_STRS, True), "headings": (_STRS, False), "role": (_STR, False),
    "page_start": (_INT + "?", False), "page_end": (_INT + "?", False), "kinds": (_STRS, True),
    "text": (_STR, True), "content_hash": (_STR, True), "text_tokens": (_INT, True), "images": (_LIST, True),
    "point_id": (_STR + "?", False), "blocks": (_STR, False),
}  # fmt: skip
IMAGE_FIELDS: dict[str, tuple[str, bool]] = {
    "key": (_STR, True), "width": (_INT, True), "height": (_INT, True), "visual_tokens": (_INT, True),
    "lines": (_STR, False),
}  # fmt: skip
SCHEMA_VERSION = 1


class StepAside(Exception):
    """The full path must answer (it gives the error, or honours what this lane does not read)."""


def handle(argv: list[str]) -> bool:
    """Answer `argv` (without the program name) if the fast lane can; False: run the full CLI."""
    if os.environ.get("KB_FAST_LANE") == "0":
        return False
    try:
        if argv in ([], ["--help"]):
            text = _root_help()
            if argv:
                sys.stdout.write(text)
                return True
            sys.stderr.write(text)  # click's no_args_is_help: the help on stderr, exit status 2
            raise SystemExit(2)
        if argv in (["docs"], ["docs", "--json"]):
            sys.stdout.write(_docs(as_json=argv[1:] == ["--json"]))
            return True
    except StepAside:
        return False
    return False


# -- help -------------------------------------------------------------------------------------------------


def prog_name() -> str:
    """The program name click shows in usage lines (click.utils._detect_program_name)."""
    path = sys.argv[0]
    main = sys.modules["__main__"]
    package = getattr(main, "__package__", None)
    if package in {None, ""}:
        return os.path.basename(path)
    name = os.path.splitext(os.path.basename(path))[0]
    module = str(package) if name == "__main__" else f"{package}.{name}"
    return f"python -m {module.lstrip('.')}"


def _root_help() -> str:
    from kb.cli._table import term_width

    if term_width() < HELP_WIDTH:
        raise StepAside  # click wraps narrower: let it
    try:
        with open(os.path.join(os.path.dirname(__file__), HELP_FILE), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        raise StepAside from None
    prog = prog_name()
    first, _, rest = text.partition("\n")
    usage = first.replace(_USAGE, f"Usage: {prog} ", 1)
    if not first.startswith(_USAGE) or not prog.isascii() or len(usage) > HELP_WIDTH - 2:
        raise StepAside  # click would wrap the usage line
    return f"{usage}\n{rest}"


def live_help(columns: int = HELP_WIDTH) -> str:
    """The full path's root help, in a fresh process named `kb` with the fast lane off."""
    import subprocess

    code = "import sys; sys.argv[0] = 'kb'; from kb.cli import main; main()"
    env = {**os.environ, "KB_FAST_LANE": "0", "COLUMNS": str(columns)}
    res = subprocess.run([sys.executable, "-c", code, "--help"], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"kb --help failed: {res.stdout}{res.stderr}")
    return res.stdout


def write_help() -> str:
    """Save the live root help as the snapshot the fast lane prints."""
    path = os.path.join(os.path.dirname(__file__), HELP_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(live_help())
    return path


# -- kb docs ----------------------------------------------------------------------------------------------


def _store_settings() -> tuple[str, str]:
    """data_dir and image_store_url as kb.settings.load_settings would give them, or StepAside."""
    if os.environ.get("KB_CONFIG"):
        raise StepAside
    if (os.environ.get("KB_SERVER_URL") or "").rstrip("/"):
        raise StepAside
    values: dict[str, str] = {"data_dir": "./kb_data", "image_store_url": ""}
    if os.path.isfile(os.path.expanduser("kb.toml")):
        import tomllib

        try:
            with open(os.path.expanduser("kb.toml"), "rb") as f:
                toml = tomllib.load(f)
        except (OSError, ValueError):
            raise StepAside from None
        for key, value in toml.items():
            if key not in {"data_dir", "image_store_url"} | FREE_TEXT_FIELDS or type(value) is not str:
                raise StepAside
            values[key] = value
    seen: set[str] = set()
    for name, value in os.environ.items():  # pydantic-settings matches KB_* names case-insensitively
        low = name.lower()
        if not low.startswith("kb_"):
            continue
        field = low[3:]
        if low in seen:
            raise StepAside  # KB_X and kb_x both set: which one pydantic takes is not ours to guess
        seen.add(low)
        if field in NOT_SETTINGS or field in FREE_TEXT_FIELDS:
            continue
        if field not in {"data_dir", "image_store_url"}:
            raise StepAside  # a setting that may be invalid (the full path says so) or that we do not read
        values[field] = value
    if not values["data_dir"]:
        raise StepAside
    return values["data_dir"], values["image_store_url"]


def _check(obj: Any, fields: dict[str, tuple[str, bool]]) -> None:
    if type(obj) is not dict:
        raise StepAside
    for name, (kind, required) in fields.items():
        if name not in obj:
            if required:
                raise StepAside
            continue
        v = obj[name]
        if kind.endswith("?"):
            if v is None:
                continue
            kind = kind[:-1]
        ok = (
            (kind == _STR and type(v) is str)
            or (kind == _INT and type(v) is int)
            or (kind == _BOOL and type(v) is bool)
            or (kind == _LIST and type(v) is list)
            or (kind == _STRS and type(v) is list and all(type(s) is str for s in v))
        )
        if not ok:
            raise StepAside


def _manifests(docs_dir: str) -> list[dict[str, Any]]:
    """The manifests as kb.catalog.Catalog lists them (sorted by file name), checked field by field."""
    import json

    try:
        entries = list(os.scandir(docs_dir))
    except FileNotFoundError:
        entries = []
    except OSError:
        raise StepAside from None
    out = []
    for name in sorted(e.name for e in entries if e.name.endswith(".json") and not e.name.startswith(".")):
        try:
            with open(os.path.join(docs_dir, name), "rb") as f:
                rec = json.loads(f.read().decode("utf-8"))
        except FileNotFoundError:
            continue  # deleted while listing, as the catalog skips it
        except (OSError, ValueError):
            raise StepAside from None
        _check(rec, DOC_FIELDS)
        if rec.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise StepAside
        for s in rec["sections"]:
            _check(s, SECTION_FIELDS)
            for i in s["images"]:
                _check(i, IMAGE_FIELDS)
        out.append(rec)
    return out


def _image_bytes(root: str) -> int:
    """kb.images.LocalImageStore.size_bytes."""
    from pathlib import Path

    p = Path(root)
    try:
        return sum(f.stat().st_size for f in p.glob("??/*.png")) if p.is_dir() else 0
    except OSError:
        raise StepAside from None


def _docs(as_json: bool) -> str:
    from pathlib import Path

    from kb.cli._docsview import docs_json, docs_table, empty_message, local_summary, manifest_row

    data_dir_s, store_url = _store_settings()
    data_dir = Path(data_dir_s).expanduser()
    url = store_url.strip()
    if not url:
        images_dir = str(data_dir / "images")
    elif "://" not in url or url.startswith("file://"):
        images_dir = str(Path(url.removeprefix("file://")).expanduser())
    else:
        raise StepAside  # an object store: fsspec and the full path
    records = _manifests(str(data_dir / "docs"))
    rows = [manifest_row(r) for r in records]
    if as_json:
        text = docs_json(rows)
    elif not rows:
        text = empty_message(f"in {data_dir}")
    else:
        keys = {i["key"] for r in records for s in r["sections"] for i in s["images"]}
        text = docs_table(rows, f"Documents in {data_dir}", local_summary(rows, len(keys), _image_bytes(images_dir)))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StepAside from None  # lone surrogates: pydantic refuses them
    return text


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-help"]:
        print(f"wrote {write_help()}")
    else:
        raise SystemExit("usage: python -m kb.cli._fast --write-help")
