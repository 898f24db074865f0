"""The in-process `transformers` backend: `AutoProcessor` + `AutoModelForImageTextToText` and the model's own
chat template. A model id and a local folder take the same code path (`from_pretrained`).

One user message carries, per source in rank order, a text part with the label, then that source's image(s)
(none in "text" mode) and/or its framed section text ("text" / "image+text" modes), and finally the question:
`kb.answer.prompt.user_parts`, the layout every backend sends. The labels stay outside the images, as text the
model reads next to each picture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.answer.backend import AnswerBackend, Readiness
from kb.answer.types import Prompt
from kb.embed.clip import pick_device
from kb.errors import ConfigError, ModelLoadError
from kb.settings import Settings

log = logging.getLogger(__name__)

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


def resolve_dtype(requested: str, device: str) -> str:
    """`auto` → bfloat16 on CUDA (float16 where the card has no bf16), float16 on MPS, float32 on CPU."""
    req = (requested or "auto").strip().lower()
    if req != "auto":
        if req not in _DTYPES:
            raise ConfigError(
                f"unknown VLM dtype {requested!r}", "use one of: auto, bfloat16, float16, float32 (KB_VLM_DTYPE)"
            )
        return _DTYPES[req]
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"


def _dtype_kwarg() -> str:
    """`from_pretrained` takes `dtype` since transformers 4.56 (`torch_dtype` before)."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def build_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """Chat messages in the processor's multimodal format, from the same `user_parts` every backend sends
    (per source: label, image(s) and/or framed section text; then the question). Image parts carry the PIL
    images themselves; text parts end in a newline so labels, images and text do not run together."""
    from kb.answer.prompt import user_parts

    parts = user_parts(prompt)
    content: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            content.append({"type": "text", "text": part if i == len(parts) - 1 else part + "\n"})
        else:
            content.append({"type": "image", "image": part if part.mode == "RGB" else part.convert("RGB")})
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    messages += [{"role": t.role, "content": [{"type": "text", "text": t.text}]} for t in prompt.history]
    messages.append({"role": "user", "content": content})
    return messages


class TransformersAnswerer(AnswerBackend):
    """An answer backend with an in-process VLM. Loads on first use (or explicitly via `load()`)."""

    backend = "transformers"
    can_stream = True

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 512,
    ) -> None:
        super().__init__()
        self.model = model
        self.device_req = device
        self.dtype_req = dtype
        self.max_new_tokens = max_new_tokens
        self.device = "cpu"
        self.dtype = "float32"
        self.load_seconds = 0.0
        self._model: Any = None
        self._processor: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TransformersAnswerer:
        return cls(
            settings.vlm_model,
            device=settings.vlm_device,
            dtype=settings.vlm_dtype,
            max_new_tokens=settings.vlm_max_new_tokens,
        )

    # ------------------------------------------------------------------ loading
    def ready(self) -> Readiness:
        """Loaded, or not loaded yet (it loads on first use); a failed load raises there, with its reason."""
        return Readiness(True, "" if self._model is not None else "loads on first use")

    def close(self) -> None:
        with self._lock:
            self._model = self._processor = None

    def load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            t0 = time.perf_counter()
            try:
                import torch
                from transformers import AutoModelForImageTextToText, AutoProcessor
            except ImportError as exc:  # pragma: no cover - transformers/torch are dependencies
                raise ModelLoadError(
                    f"the transformers VLM backend needs torch and transformers: {exc}",
                    "pip install torch torchvision transformers",
                ) from exc

            device = pick_device(self.device_req)
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise ModelLoadError(
                    f"VLM device {device!r} requested but CUDA is not available",
                    "set KB_VLM_DEVICE=auto or cpu, or install a CUDA build of torch on a GPU machine",
                )
            dtype = resolve_dtype(self.dtype_req, device)
            local = Path(self.model).expanduser()
            looks_local = local.exists() or self.model.startswith((".", "/", "~")) or self.model.count("/") > 1
            if looks_local and not local.is_dir():
                raise ModelLoadError(
                    f"VLM model folder {self.model!r} does not exist",
                    "set KB_VLM_MODEL to a Hugging Face model id (e.g. Qwen/Qwen2-VL-2B-Instruct) or a local "
                    "folder holding config.json, the weights and the processor files",
                )
            source = str(local) if local.is_dir() else self.model
            try:
                auto_processor: Any = AutoProcessor
                auto_model: Any = AutoModelForImageTextToText
                processor = auto_processor.from_pretrained(source)
                model = auto_model.from_pretrained(source, **{_dtype_kwarg(): getattr(torch, dtype)})
                model.to(device)
                model.eval()
            except Exception as exc:
                hint = (
                    "not enough memory for this model: pick a smaller one, KB_VLM_DTYPE=bfloat16, or another device"
                    if "out of memory" in str(exc).lower()
                    else "the folder must hold a saved image-text-to-text model (config.json, weights) and its "
                    "processor (tokenizer, image processor, chat template)"
                    if local.is_dir()
                    else "check KB_VLM_MODEL; offline, download the model first (huggingface-cli download "
                    f"{self.model}) or point KB_VLM_MODEL at a local folder; or use the openai backend"
                )
                raise ModelLoadError(f"cannot load VLM {self.model!r} on {device} ({dtype}): {exc}", hint) from exc
            if getattr(processor, "tokenizer", None) is None:
                raise ModelLoadError(
                    f"VLM {self.model!r} has no tokenizer in its processor",
                    "use a multimodal chat model whose processor bundles a tokenizer and a chat template",
                )
            self._processor, self._model = processor, model
            self.device, self.dtype = device, dtype
            self.load_seconds = time.perf_counter() - t0
            log.info("loaded VLM %s on %s (%s) in %.1fs", self.model, device, dtype, self.load_seconds)

    @property
    def processor(self) -> Any:
        self.load()
        return self._processor

    # ------------------------------------------------------------------ prompt → model inputs
    def build_inputs(self, prompt: Prompt) -> Any:
        """The processed inputs (input_ids, attention_mask, pixel_values, image_grid_thw, ...) on the model's device."""
        self.load()
        messages = build_messages(prompt)
        try:
            inputs = self._processor.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        except ValueError as exc:
            if "chat_template" not in str(exc) and "chat template" not in str(exc):
                raise
            raise ModelLoadError(
                f"VLM {self.model!r} has no chat template",
                "use an instruction-tuned (chat) model, or save a chat_template.jinja next to its processor",
            ) from exc
        return self._to_device(inputs)

    def _to_device(self, inputs: Any) -> Any:
        import torch

        dtype = getattr(torch, self.dtype)
        for key in list(inputs.keys()):
            value = inputs[key]
            if isinstance(value, torch.Tensor):
                inputs[key] = value.to(self.device, dtype=dtype) if value.is_floating_point() else value.to(self.device)
        return inputs

    def _gen_kwargs(self) -> dict[str, Any]:
        tok = self._processor.tokenizer
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,  # greedy: grounded answers, reproducible runs
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        gen_cfg = getattr(self._model, "generation_config", None)
        if getattr(gen_cfg, "pad_token_id", None) is None and tok.pad_token_id is not None:
            kwargs["pad_token_id"] = tok.pad_token_id
        return kwargs

    def _count(self, inputs: Any) -> dict[str, int]:
        ids = inputs["input_ids"]
        image_token_id = getattr(self._model.config, "image_token_id", None)
        if image_token_id is None:
            image_token_id = getattr(self._model.config, "image_token_index", None)
        visual = int((ids == image_token_id).sum()) if image_token_id is not None else 0
        return {"prompt_tokens": int(ids.shape[-1]), "visual_tokens": visual, "completion_tokens": 0}

    # ------------------------------------------------------------------ answering
    def generate(self, prompt: Prompt) -> str:
        import torch

        inputs = self.build_inputs(prompt)
        usage = self._count(inputs)
        with torch.inference_mode():
            out = self._model.generate(**inputs, **self._gen_kwargs())
        new = out[0, inputs["input_ids"].shape[-1] :]
        usage["completion_tokens"] = int(new.shape[-1])
        self.last_usage = usage
        text: str = self._processor.tokenizer.decode(new, skip_special_tokens=True)
        return text.strip()

    def stream(self, prompt: Prompt) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.build_inputs(prompt)
        usage = self._count(inputs)
        streamer: Any = TextIteratorStreamer(self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        errors: list[BaseException] = []
        produced: list[int] = []

        class _StopWhenAsked(StoppingCriteria):  # the consumer closed the stream: stop generating
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        def run() -> None:
            try:
                with torch.inference_mode():
                    out = self._model.generate(
                        **inputs,
                        **self._gen_kwargs(),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
                    )
                produced.append(int(out.shape[-1] - inputs["input_ids"].shape[-1]))
            except BaseException as exc:  # re-raised in the consumer's thread
                errors.append(exc)
                streamer.end()  # unblock the consumer

        thread = threading.Thread(target=run, name="kb-vlm-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            thread.join()
            usage["completion_tokens"] = produced[0] if produced else 0
            self.last_usage = usage
        if errors:
            raise errors[0]
