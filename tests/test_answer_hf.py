"""The transformers VLM backend with a tiny random-weight Qwen2-VL saved to a folder and loaded back through
`TransformersAnswerer(folder)`: the same `from_pretrained` path a real model id takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kb.answer.backend import AnswerBackend
from kb.answer.hf import TransformersAnswerer, build_messages, resolve_dtype
from kb.answer.types import Prompt, PromptImage
from kb.errors import ConfigError, ModelLoadError
from kb.hits import Hit

pytest.importorskip("torchvision")  # the Qwen2-VL processor needs it (video processor)


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_vlm import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="module")
def answerer(tiny_vlm_dir: Path) -> TransformersAnswerer:
    vlm = TransformersAnswerer(str(tiny_vlm_dir), device="cpu", max_new_tokens=6)
    vlm.load()
    return vlm


def _hit(i: int, title: str, heading: list[str], page: int) -> Hit:
    return Hit(
        doc=f"doc{i}",
        title=title,
        heading_path=heading,
        pages=(page, page),
        text=f"Section text number {i}.",
        score=1.0 / i,
        scores={"rrf": 1.0 / i},
        image_keys=[f"k{i}"],
        images=[Path(f"/tmp/img{i}.png")],
        section_id=f"s{i}",
        point_id=f"p{i}",
    )


SIZES = [(280, 140), (112, 224), (196, 196), (84, 56)]  # each becomes a different visual-token grid


def _prompt(mode: str = "image", *, images_per_source: int = 1, n_sources: int = 4) -> Prompt:
    titles = ["Handbook", "Security policy", "Travel", "Payroll"]
    sources = []
    for n in range(1, n_sources + 1):
        hit = _hit(n, titles[n - 1], ["Chapter", f"Part {n}"], n * 3)
        w, h = SIZES[n - 1]
        imgs = [Image.new("RGB", (w, h), (40 * n, 255 - 40 * n, 7 * k)) for k in range(images_per_source)]
        sources.append(PromptImage(n=n, hit=hit, label=hit.label(n), images=imgs, visual_tokens=64, text=hit.text))
    return Prompt(
        system="Answer only from the numbered sources; cite them as [n].",
        question="What does the handbook say about travel?",
        sources=sources,
        mode=mode,  # type: ignore[arg-type]
    )


def _decoded(vlm: TransformersAnswerer, inputs: object) -> str:
    ids = inputs["input_ids"][0]  # type: ignore[index]
    return str(vlm.processor.tokenizer.decode(ids, skip_special_tokens=False))


def test_protocol_and_lazy_load(tiny_vlm_dir: Path) -> None:
    vlm = TransformersAnswerer(str(tiny_vlm_dir))
    assert isinstance(vlm, AnswerBackend)
    assert vlm.backend == "transformers" and vlm.model == str(tiny_vlm_dir)
    assert vlm._model is None  # nothing loads until first use
    vlm.load()
    assert vlm.device == "cpu" and vlm.dtype == "float32"  # auto on a CPU-only machine


def test_images_reach_model_in_rank_order_with_labels(answerer: TransformersAnswerer) -> None:
    prompt = _prompt("image")
    inputs = answerer.build_inputs(prompt)
    text = _decoded(answerer, inputs)
    tok = answerer.processor.tokenizer
    ids = inputs["input_ids"][0].tolist()

    # one vision block per image, and one image_grid_thw row per image
    assert text.count("<|vision_start|>") == 4
    assert inputs["image_grid_thw"].shape[0] == 4
    # the image placeholders expand to exactly the grid's tokens (merge 2×2)
    grid = inputs["image_grid_thw"]
    assert ids.count(tok.convert_tokens_to_ids("<|image_pad|>")) == int((grid.prod(dim=1) // 4).sum())
    # the grids follow the sources' image sizes in rank order (28 px per merged token, 14 px patches)
    expected = [[1, round(h / 28) * 2, round(w / 28) * 2] for (w, h) in SIZES]
    assert grid.tolist() == expected

    # labels appear in rank order, each directly before its own image block
    positions = [text.index(src.label) for src in prompt.sources]
    assert positions == sorted(positions)
    vision = [i for i in range(len(text)) if text.startswith("<|vision_start|>", i)]
    for k, pos in enumerate(positions):
        assert pos < vision[k]
        if k + 1 < len(positions):
            assert vision[k] < positions[k + 1]
    # system first, question last, then the assistant turn
    assert text.index(prompt.system) < positions[0]
    assert text.index(prompt.question) > vision[-1]
    assert text.rstrip().endswith("<|im_start|>assistant")
    # image mode sends labels, not section text
    assert "Section text number" not in text
    assert answerer._count(inputs)["visual_tokens"] == int((grid.prod(dim=1) // 4).sum())


def test_several_images_per_source(answerer: TransformersAnswerer) -> None:
    prompt = _prompt("image", images_per_source=2, n_sources=3)
    inputs = answerer.build_inputs(prompt)
    text = _decoded(answerer, inputs)
    assert text.count("<|vision_start|>") == 6
    assert inputs["image_grid_thw"].shape[0] == 6
    # both images of source [1] come before the label of [2]
    vision = [i for i in range(len(text)) if text.startswith("<|vision_start|>", i)]
    assert vision[1] < text.index("[2] ") < vision[2]


def test_text_mode_sends_no_images(answerer: TransformersAnswerer) -> None:
    prompt = _prompt("text")
    inputs = answerer.build_inputs(prompt)
    text = _decoded(answerer, inputs)
    assert "<|vision_start|>" not in text and "<|image_pad|>" not in text
    assert "pixel_values" not in inputs and "image_grid_thw" not in inputs
    for src in prompt.sources:
        assert src.label in text and f"Section text number {src.n}." in text
    assert text.index("Section text number 1.") < text.index(prompt.sources[1].label)
    assert text.count("<source n=") == 4  # framed as data


def test_image_plus_text_mode(answerer: TransformersAnswerer) -> None:
    prompt = _prompt("image+text")
    inputs = answerer.build_inputs(prompt)
    text = _decoded(answerer, inputs)
    assert text.count("<|vision_start|>") == 4
    vision = [i for i in range(len(text)) if text.startswith("<|vision_start|>", i)]
    for k, src in enumerate(prompt.sources):
        # label, then its image, then its section text framed as data (the layout every backend sends)
        assert text.index(src.label) < vision[k] < text.index(f"<source n={src.n}>")
        assert text.index(f"Section text number {src.n}.") < (vision[k + 1] if k + 1 < 4 else len(text))


def test_build_messages_shape() -> None:
    msgs = build_messages(_prompt("image", n_sources=2))
    assert [m["role"] for m in msgs] == ["system", "user"]
    kinds = [p["type"] for p in msgs[1]["content"]]
    assert kinds == ["text", "image", "text", "image", "text"]
    assert msgs[1]["content"][0]["text"] == "[1] Handbook › Chapter › Part 1, p. 3\n"
    assert msgs[1]["content"][-1]["text"] == "Question: What does the handbook say about travel?"
    assert msgs[0]["content"][0]["text"].startswith("Answer only from")


def test_generate_returns_string(answerer: TransformersAnswerer) -> None:
    out = answerer.generate(_prompt("image"))
    assert isinstance(out, str)
    assert 1 <= answerer.last_usage["completion_tokens"] <= 6
    assert answerer.last_usage["visual_tokens"] > 0
    assert answerer.generate(_prompt("image")) == out  # greedy: reproducible


def test_stream_yields_pieces(answerer: TransformersAnswerer) -> None:
    prompt = _prompt("image")
    pieces = list(answerer.stream(prompt))
    assert len(pieces) >= 1 and all(isinstance(p, str) for p in pieces)
    assert 1 <= answerer.last_usage["completion_tokens"] <= 6
    # streaming and non-streaming agree (greedy), modulo the final strip
    assert "".join(pieces).strip() == answerer.generate(prompt)


def test_stream_closed_early_stops_generation(tiny_vlm_dir: Path) -> None:
    """Closing the stream (what the API does when its client leaves) stops `generate` within a token or two."""
    budget = 300
    vlm = TransformersAnswerer(str(tiny_vlm_dir), device="cpu", max_new_tokens=budget)
    prompt = _prompt("text", n_sources=1)
    vlm.load()
    vlm._model.generation_config.eos_token_id = None  # random weights: never stop by themselves, so early = cancelled
    gen: Any = vlm.stream(prompt)
    got = [next(gen), next(gen)]
    assert all(isinstance(p, str) for p in got)
    gen.close()  # joins the generation thread; must not hang
    produced = vlm.last_usage["completion_tokens"]
    assert 1 <= produced < budget // 4, produced
    # the same stream read to the end runs the whole budget: the early stop above was the cancel
    assert "".join(vlm.stream(prompt)) and vlm.last_usage["completion_tokens"] == budget


def test_bad_folder_gives_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as missing:
        TransformersAnswerer(str(tmp_path / "nope")).load()
    assert missing.value.hint
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError) as broken:
        TransformersAnswerer(str(empty)).generate(_prompt("text", n_sources=1))
    assert "cannot load VLM" in str(broken.value) and broken.value.hint


def test_dtype_resolution() -> None:
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "mps") == "float16"
    assert resolve_dtype("bf16", "cpu") == "bfloat16"
    with pytest.raises(ConfigError):
        resolve_dtype("int3", "cpu")


def test_cuda_requested_without_cuda_is_a_clear_error(tiny_vlm_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA is not available") as err:
        TransformersAnswerer(str(tiny_vlm_dir), device="cuda").load()
    assert "KB_VLM_DEVICE" in err.value.hint


def test_missing_chat_template_is_a_clear_error(tiny_vlm_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_vlm_dir, folder)
    (folder / "chat_template.jinja").unlink()
    vlm = TransformersAnswerer(str(folder), device="cpu")
    with pytest.raises(ModelLoadError, match="chat template"):
        vlm.build_inputs(_prompt("image", n_sources=1))


def test_ask_flow_with_the_transformers_backend(tiny_vlm_dir: Path, tmp_path: Path) -> None:
    """Settings → make_answerer → build_prompt (budget, labels) → this backend → Answer, streamed and not."""
    from kb.answer.backend import make_answerer
    from kb.answer.prepare import PreparedAnswer
    from kb.answer.prompt import build_prompt
    from kb.answer.run import AnswerStream, generate
    from kb.settings import Settings

    hits = []
    for i, (w, h) in enumerate(SIZES, start=1):
        hit = _hit(i, f"Doc {i}", ["Part", f"Section {i}"], i)
        hit.images = [tmp_path / f"img{i}.png"]
        Image.new("RGB", (w * 2, h * 2), "white").save(hit.images[0])
        hits.append(hit)
    kw: dict[str, Any] = {
        "data_dir": tmp_path / "d",
        "vlm_backend": "transformers",
        "vlm_model": str(tiny_vlm_dir),
        "vlm_device": "cpu",
        "vlm_max_new_tokens": 4,
    }
    settings = Settings(**kw)
    answerer = make_answerer(settings)
    assert isinstance(answerer, TransformersAnswerer) and answerer.max_new_tokens == 4
    prompt = build_prompt("What is in section 2?", hits, settings)
    assert len(prompt.sources) == 4
    prep = PreparedAnswer("What is in section 2?", hits, prompt)

    answer = generate(prep, answerer, settings)
    assert answer.backend == "transformers" and answer.model == str(tiny_vlm_dir)
    assert answer.usage.images_sent == 4 and 1 <= answer.usage.completion_tokens <= 4
    assert [c.n for c in answer.citations] == [1, 2, 3, 4]
    inputs = answerer.build_inputs(prompt)
    assert inputs["image_grid_thw"].shape[0] == 4

    stream = AnswerStream(prep, answerer, settings)
    pieces = list(stream)
    assert pieces and stream.answer is not None
    assert stream.answer.text == "".join(pieces)
