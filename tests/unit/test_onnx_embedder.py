"""The ONNX backends: the packaged MiniLM exported here, compared with the torch model.

The module exports the model once into a temporary cache (a few seconds) and shares it; the
torch model is loaded once as the reference.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.embedding import onnx_runtime
from service.embedding.model_path import resolve_model
from service.embedding.onnx_runtime import EmbeddingBackendError, OnnxEncoder, exported_model
from service.embedding.sentence_transformer import SentenceEncoder, SentenceTransformerEmbedder, load_model, runtime_of
from service.settings import Settings

pytestmark = pytest.mark.model

THREADS = 1

SENTENCES = [
    "I love dogs",
    "My sister adopted a golden retriever puppy last week and named him Biscuit.",
    "Remind me to water the plants on Tuesday.",
    "The quarterly revenue fell 3.2% compared to the same period last year.",
    "Caroline went to the LGBTQ support group yesterday and said it was really powerful.",
    "What's the capital of Australia?",
    "ok",
    "",
    "Ich wohne seit 2019 in Berlin und arbeite als Lehrerin.",
    "Je voudrais réserver une table pour deux personnes ce soir.",
    "東京で寿司を食べました。",
    "🙂🙂 see you soon!!!",
    "def load_model(name_or_path: str) -> SentenceEncoder: ...",
    "Allergic to peanuts and shellfish; prefers vegetarian food when travelling.",
    "The meeting moved from 3 pm to 4:30 pm on Friday, 12 May 2023.",
    "Melanie painted a sunrise over the lake and hung it in the kitchen",
    "user: hi there\nassistant: hello! how can I help you today?",
    "A very long message that keeps going, " * 10,
    "Timber from the old barn was reused to build the new bookshelf in the study.",
    "He ran the Boston marathon in under three hours, a personal best.",
]
LONG = "a long message about hiking in the mountains with friends " * 80  # far past 256 tokens


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch_model() -> SentenceEncoder:
    return load_model(resolve_model(None), threads=THREADS)


@pytest.fixture(scope="module")
def onnx_model(cache: Path) -> SentenceEncoder:
    return load_model(resolve_model(None), threads=THREADS, backend="onnx", cache_dir=cache)


@pytest.fixture(scope="module")
def int8_model(cache: Path, onnx_model: SentenceEncoder) -> SentenceEncoder:
    return load_model(resolve_model(None), threads=THREADS, backend="onnx-int8", cache_dir=cache)


@pytest.fixture(scope="module")
def openvino_model(cache: Path, onnx_model: SentenceEncoder) -> SentenceEncoder:
    return load_model(resolve_model(None), threads=THREADS, backend="openvino", cache_dir=cache)


@pytest.fixture(scope="module")
def models(onnx_model: SentenceEncoder, int8_model: SentenceEncoder, openvino_model: SentenceEncoder) -> dict[str, SentenceEncoder]:
    return {"onnx": onnx_model, "onnx-int8": int8_model, "openvino": openvino_model}


def _encode(model: SentenceEncoder, texts: list[str]) -> np.ndarray:
    """The call the embedder's lane makes."""
    array: np.ndarray = model.encode(
        texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return array


@pytest.fixture(scope="module")
def reference(torch_model: SentenceEncoder) -> np.ndarray:
    return _encode(torch_model, [*SENTENCES, LONG])


class TestAgreement:
    @pytest.mark.parametrize(
        ("backend", "mean_floor", "min_floor"), [("onnx", 0.999, 0.999), ("onnx-int8", 0.98, 0.95), ("openvino", 0.999, 0.998)]
    )
    def test_cosine_to_the_torch_vectors(
        self, backend: str, mean_floor: float, min_floor: float, models: dict[str, SentenceEncoder], reference: np.ndarray
    ) -> None:
        vectors = _encode(models[backend], [*SENTENCES, LONG])
        assert vectors.shape == reference.shape == (len(SENTENCES) + 1, 384)
        assert vectors.dtype == np.float32
        cosines = (vectors * reference).sum(axis=1)
        assert cosines.mean() >= mean_floor
        assert cosines.min() >= min_floor

    def test_unit_length(self, models: dict[str, SentenceEncoder]) -> None:
        for model in models.values():
            norms = np.linalg.norm(_encode(model, SENTENCES), axis=1)
            assert np.allclose(norms, 1.0, atol=1e-5)

    def test_normalised_as_modules_json_says_even_when_not_asked(self, onnx_model: SentenceEncoder) -> None:
        vectors = onnx_model.encode(["hello there"])
        assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)

    def test_dimension(self, models: dict[str, OnnxEncoder]) -> None:
        assert {model.get_embedding_dimension() for model in models.values()} == {384}

    def test_openvino_runs_the_float_export(self, cache: Path, openvino_model: OnnxEncoder) -> None:
        assert openvino_model.backend == "openvino"
        assert not list(cache.glob("openvino-*"))  # no file of its own: it compiles the onnx one

    def test_openvino_gives_the_same_vectors_one_by_one_and_batched(self, openvino_model: SentenceEncoder) -> None:
        batched = _encode(openvino_model, SENTENCES)
        alone = np.stack([_encode(openvino_model, [text])[0] for text in SENTENCES])
        assert (batched * alone).sum(axis=1).min() >= 0.999  # the padding of a batch changes nothing that counts


class TestInputs:
    def test_order_is_kept_for_mixed_lengths(self, onnx_model: SentenceEncoder) -> None:
        texts = [SENTENCES[17], "ok", LONG, "", SENTENCES[4], "hi", SENTENCES[1]] * 3  # 21: more than one sub-batch
        together = _encode(onnx_model, texts)
        alone = np.stack([_encode(onnx_model, [text])[0] for text in texts[:7]])
        assert np.allclose(together[:7], alone, atol=1e-4)
        assert np.allclose(together[7:14], alone, atol=1e-4)

    def test_empty_string_and_empty_batch(self, onnx_model: SentenceEncoder, reference: np.ndarray) -> None:
        [vector] = _encode(onnx_model, [""])
        assert np.isfinite(vector).all()
        assert float(vector @ reference[SENTENCES.index("")]) >= 0.999
        assert _encode(onnx_model, []).shape == (0, 384)

    def test_long_input_is_truncated_at_max_seq_length(self, onnx_model: OnnxEncoder, reference: np.ndarray) -> None:
        assert onnx_model.max_seq_length == 256
        long, longer = _encode(onnx_model, [LONG, LONG + " and what came after, which the model never sees"])
        assert np.allclose(long, longer, atol=1e-5)
        assert float(long @ reference[-1]) >= 0.999

    def test_a_single_string_gives_one_vector(self, onnx_model: SentenceEncoder) -> None:
        assert onnx_model.encode("hello").shape == (384,)

    def test_unsupported_arguments_are_refused(self, onnx_model: SentenceEncoder) -> None:
        with pytest.raises(TypeError, match="convert_to_tensor"):
            onnx_model.encode(["hello"], convert_to_tensor=True)


class TestCache:
    def test_reused_and_one_file_per_backend(
        self, cache: Path, onnx_model: SentenceEncoder, int8_model: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        files = sorted(cache.glob("*.onnx"))
        assert [path.name.rsplit("-", 1)[0] for path in files] == ["onnx", "onnx-int8"]
        stamps = {path: path.stat().st_mtime_ns for path in files}

        def refuse(*args: object) -> None:
            raise AssertionError("exported again")

        monkeypatch.setattr(onnx_runtime, "_export", refuse)
        monkeypatch.setattr(onnx_runtime, "_quantize", refuse)
        load_model(resolve_model(None), threads=THREADS, backend="onnx-int8", cache_dir=cache)
        folder = Path(resolve_model(None))
        assert exported_model(folder, backend="onnx", cache_dir=cache) in files
        assert {path: path.stat().st_mtime_ns for path in cache.glob("*.onnx")} == stamps
        assert not [path for path in cache.iterdir() if path.name.startswith(".")]  # no temporary left

    def test_a_changed_model_file_changes_the_key(self, tmp_path: Path, cache: Path, onnx_model: SentenceEncoder) -> None:
        packaged = Path(resolve_model(None))
        copy = tmp_path / "model"
        shutil.copytree(packaged, copy, symlinks=True, ignore=shutil.ignore_patterns("model.safetensors"))
        (copy / "model.safetensors").symlink_to(packaged / "model.safetensors")
        same = onnx_runtime._cache_key(copy, "onnx")
        assert same == onnx_runtime._cache_key(packaged, "onnx")
        (copy / "sentence_bert_config.json").write_text('{"max_seq_length": 128, "do_lower_case": false}')
        assert onnx_runtime._cache_key(copy, "onnx") != same
        assert onnx_runtime._cache_key(copy, "onnx-int8") != onnx_runtime._cache_key(copy, "onnx")


class TestErrors:
    def test_an_export_failure_names_the_setting(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken"
        shutil.copytree(Path(resolve_model(None)), broken, ignore=shutil.ignore_patterns("model.safetensors"))
        (broken / "model.safetensors").write_bytes(b"not a safetensors file")
        cache = tmp_path / "cache"
        with pytest.raises(EmbeddingBackendError, match="MEMORY_EMBEDDING_BACKEND=onnx.*MEMORY_EMBEDDING_BACKEND=torch"):
            load_model(str(broken), threads=THREADS, backend="onnx", cache_dir=cache)
        assert list(cache.iterdir()) == []  # the temporary file is gone, nothing half-written

    def test_a_model_the_encoder_cannot_run_is_refused_before_exporting(self, tmp_path: Path) -> None:
        odd = tmp_path / "odd"
        odd.mkdir()
        (odd / "modules.json").write_text(
            '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},'
            ' {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},'
            ' {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]'
        )
        with pytest.raises(EmbeddingBackendError, match="Dense"):
            load_model(str(odd), threads=THREADS, backend="onnx", cache_dir=tmp_path / "cache")

    def test_the_backend_setting_is_validated(self) -> None:
        assert Settings(embedding_backend="onnx-int8", _env_file=None).embedding_backend == "onnx-int8"  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="embedding_backend"):
            Settings(embedding_backend="tensorrt", _env_file=None)  # type: ignore[call-arg, arg-type]


async def test_the_embedder_runs_on_onnx_end_to_end(cache: Path, onnx_model: SentenceEncoder, reference: np.ndarray) -> None:
    embedder = await SentenceTransformerEmbedder.load(None, batch_size=8, threads=THREADS, backend="onnx", cache_dir=cache)
    assert embedder.has_query_lane and embedder.dimension == 384
    await embedder.start()
    try:
        texts = SENTENCES[:12]
        vectors, [query] = await asyncio.gather(embedder.embed(texts), embedder.embed_query(["What's the capital of Australia?"]))
    finally:
        await embedder.close()
    assert len(vectors) == 12 and all(len(vector) == 384 for vector in vectors)
    assert (np.asarray(vectors) * reference[:12]).sum(axis=1).min() >= 0.999
    assert float(np.asarray(query) @ reference[SENTENCES.index("What's the capital of Australia?")]) >= 0.999


async def test_the_indexing_lane_runs_one_instance_a_stream_sharing_the_threads(cache: Path, onnx_model: SentenceEncoder) -> None:
    """On an exported runtime the indexing lane's instances split MEMORY_EMBEDDING_THREADS; the
    query lane's one has its own count (one unless told)."""
    embedder = await SentenceTransformerEmbedder.load(None, threads=2, backend="onnx", cache_dir=cache, index_streams=2)
    indexing, query = embedder.models
    assert [model.threads for model in indexing] == [1, 1]  # type: ignore[attr-defined]
    assert [model.threads for model in query] == [1]  # type: ignore[attr-defined]
    single = await SentenceTransformerEmbedder.load(
        None, threads=2, backend="onnx", cache_dir=cache, index_streams=1, query_threads=2
    )
    indexing, query = single.models
    assert [model.threads for model in indexing] == [2] and [model.threads for model in query] == [2]  # type: ignore[attr-defined]


async def test_unset_streams_are_one_a_cpu_up_to_the_cap(
    cache: Path, onnx_model: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each instance holds a copy of the model: a machine of many CPUs gets DEFAULT_MAX_STREAMS."""
    from service.embedding import sentence_transformer

    monkeypatch.setattr(sentence_transformer, "usable_cpus", lambda: 16)
    embedder = await SentenceTransformerEmbedder.load(None, threads=4, backend="onnx", cache_dir=cache)
    assert len(embedder.models[0]) == sentence_transformer.DEFAULT_MAX_STREAMS == 4
    assert {model.threads for model in embedder.models[0]} == {1}  # type: ignore[attr-defined]


async def test_the_lifespan_follows_the_settings(
    tmp_path: Path, cache: Path, onnx_model: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MEMORY_EMBEDDING_BACKEND reaches the model; the cache is <data_dir>/models by default."""
    from service.lifespan import open_embedder
    from service.observability.metrics import Metrics

    def refuse(*args: object) -> None:
        raise AssertionError("exported: the cache in <data_dir>/models was not used")

    monkeypatch.setattr(onnx_runtime, "_export", refuse)
    (tmp_path / "models").mkdir()
    for path in cache.glob("onnx-[0-9a-f]*.onnx"):  # the module's export, so this test exports nothing
        (tmp_path / "models" / path.name).symlink_to(path)
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path, embedding_backend="onnx", embedding_threads=THREADS, embedding_query_lane=False, _env_file=None
    )
    embedder = await open_embedder(settings, Metrics())
    try:
        [vector] = await embedder.embed(["hello"])
    finally:
        await embedder.close()
    assert len(vector) == 384
    indexing, query = embedder.models
    assert indexing == query and all(isinstance(model, OnnxEncoder) for model in indexing)


class TestAuto:
    """``auto``, the default: openvino, else onnx, when the export can be made or read, else torch,
    decided once."""

    def test_auto_is_the_default(self) -> None:
        assert Settings(_env_file=None).embedding_backend == "auto"  # type: ignore[call-arg]

    async def test_auto_runs_openvino_from_the_cache_on_both_lanes(self, cache: Path, onnx_model: SentenceEncoder) -> None:
        embedder = await SentenceTransformerEmbedder.load(None, threads=THREADS, backend="auto", cache_dir=cache)
        indexing, query = embedder.models
        assert all(isinstance(model, OnnxEncoder) for model in indexing + query)
        assert {runtime_of(model) for model in indexing + query} == {"openvino"}

    async def test_auto_runs_onnx_when_openvino_cannot_run(
        self, cache: Path, onnx_model: SentenceEncoder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def unavailable(onnx_file: Path, threads: int, backend: str) -> None:
            raise onnx_runtime._fail(backend, "openvino is not installed")

        monkeypatch.setattr(onnx_runtime, "_openvino_graph", unavailable)
        with caplog.at_level("WARNING", logger="service.embedding.sentence_transformer"):
            embedder = await SentenceTransformerEmbedder.load(None, threads=THREADS, backend="auto", cache_dir=cache)
        indexing, query = embedder.models
        assert {runtime_of(model) for model in indexing + query} == {"onnx"}
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "openvino is not installed" in warnings[0] and "running the model on onnx" in warnings[0]

    async def test_auto_falls_back_to_torch_once_when_no_export_can_be_made(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        blocked = tmp_path / "a-file"
        blocked.write_text("the cache folder cannot be made under a file")
        with caplog.at_level("WARNING", logger="service.embedding.sentence_transformer"):
            embedder = await SentenceTransformerEmbedder.load(None, threads=THREADS, backend="auto", cache_dir=blocked / "models")
        indexing, query = embedder.models
        assert [runtime_of(model) for model in indexing + query] == ["torch", "torch"]
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "running the model on torch" in warnings[0] and "MEMORY_EMBEDDING_CACHE_DIR" in warnings[0]
        await embedder.start()
        try:
            [vector] = await embedder.embed_query(["hello"])
        finally:
            await embedder.close()
        assert len(vector) == 384
