"""Make `unstructured` usable without network access.

Two things in unstructured 0.27 reach the network on their own:

1. Importing it makes a telemetry look-up (scarf) unless `DO_NOT_TRACK` (or `SCARF_NO_ANALYTICS`)
   is set. We set `DO_NOT_TRACK=1` before the first import.
2. Its text-type heuristics (`is_possible_narrative_text` / `is_possible_title`, used by the
   HTML, Markdown, DOCX, TXT and PDF partitioners for every text block without a more specific
   tag) call `unstructured.nlp.tokenize.sent_tokenize` / `pos_tag`, which load the spaCy model
   `en_core_web_sm` and *download and pip-install it* from GitHub on first use. Offline, md/txt/
   html/docx raise and `partition_pdf(strategy="fast")` swallows the error and returns nothing.
   No partition kwarg or env var skips that (`languages=` and `UNSTRUCTURED_LANGUAGE_CHECKS` do
   not: `exceeds_cap_ratio` always counts sentences). So we hand unstructured's single model
   hook, `unstructured.nlp.tokenize._get_nlp`, a rule-based spaCy pipeline built from spaCy's
   bundled language data (`spacy.blank("en")` + `sentencizer`): sentence splitting and word
   tokenizing work, POS tags are empty, nothing is downloaded. The heuristics then only decide
   NarrativeText vs Text, which we map to the same "paragraph" block anyway. We use the rule-based
   pipeline even when `en_core_web_sm` happens to be installed so that the same file gives the
   same blocks (and section ids) on every machine.

`unstructured.nlp.tokenize` imports spaCy, which imports thinc, whose `thinc.compat` imports torch when
it is installed (about 2.5 s, most of a `kb render`) only to offer torch layers that a blank pipeline
never uses. When torch is not loaded yet and this is the process's only thread, that import runs with
torch hidden (thinc then records `has_torch = False`; a later `import torch` elsewhere works as usual).
With other threads running (the API) the import is left alone: a module hidden from sys.modules would
be hidden from them too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_ready = False


@contextlib.contextmanager
def _torch_hidden() -> Iterator[None]:
    """Imports inside see no torch (ImportError), when that cannot affect another thread."""
    if "torch" in sys.modules or threading.active_count() > 1:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


@lru_cache(maxsize=1)
def _rule_based_nlp() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def prepare_unstructured() -> None:
    """Idempotent: set the opt-out env vars and install the offline NLP hook."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        # Any non-empty value opts out of the telemetry look-up made at import time.
        if not (os.environ.get("DO_NOT_TRACK") or "").strip():
            os.environ["DO_NOT_TRACK"] = "1"
        # The "try our commercial offering" banner printed on first partition.
        os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

        with _torch_hidden():  # spaCy -> thinc -> torch, unused by a blank pipeline
            import unstructured.nlp.tokenize as tokenize

        if not hasattr(tokenize, "_get_nlp"):
            raise RuntimeError(
                "this unstructured version has no unstructured.nlp.tokenize._get_nlp hook; "
                "ingest/formats/_offline.py must be updated before parsing can run offline"
            )
        tokenize._get_nlp = _rule_based_nlp
        log.debug("unstructured: rule-based spaCy pipeline installed (no model download)")
        _ready = True
