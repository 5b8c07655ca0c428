"""The sentence-transformers model on ONNX Runtime or OpenVINO, exported locally from its own weights.

Nothing is downloaded: the transformer of the configured model folder (the packaged
all-MiniLM-L6-v2 unless ``MEMORY_EMBEDDING_MODEL`` names another) is exported with
``torch.onnx.export`` and, for ``onnx-int8``, quantized with ONNX Runtime's dynamic int8
quantization. ``onnx`` and ``onnx-int8`` run the file on ONNX Runtime; ``openvino`` compiles the
same float export with OpenVINO, which computes in bfloat16 on CPUs with bf16 units (AMX,
AVX512-BF16; the vectors stay within a cosine of 0.9999 of float's) and in float32 elsewhere.
The file is cached under ``MEMORY_EMBEDDING_CACHE_DIR``, named by a digest of the model files,
the backend, the ONNX Runtime and torch versions and this module's recipe, so a changed model (or
a new runtime) is exported again. It is written to a temporary file in the same folder and renamed
into place, so a process never reads a half-written one.

``OnnxEncoder`` does what ``SentenceTransformer.encode`` does for a Transformer, Pooling
(Normalize) model: the model's ``tokenizer.json`` truncating at ``max_seq_length``, the
transformer on ONNX Runtime, pooling with the attention mask, and L2 normalisation where the
model's ``modules.json`` has it. A batch is sorted by length and run in sub-batches, so short
texts are not padded to the longest of 64; the vectors come back in the caller's order.

On torch 2.13 the TorchScript exporter (``dynamo=False``) is used: it exports MiniLM in about
3 s and its graph ran a little faster on ONNX Runtime than the torch.export-based one's, which
also needs ``onnxscript`` and took 9 s.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendChoice",
    "EmbeddingBackendError",
    "OnnxEncoder",
    "exported_model",
    "local_model_folder",
]

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8", "openvino"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8", "openvino")
# What MEMORY_EMBEDDING_BACKEND may say: a runtime, or ``auto`` (openvino, else onnx, else torch).
BackendChoice = Literal["auto", "torch", "onnx", "onnx-int8", "openvino"]
# The runtimes that run an export of the model, and the export each runs.
OnnxBackend = Literal["onnx", "onnx-int8", "openvino"]
ExportKind = Literal["onnx", "onnx-int8"]
_EXPORT_OF: dict[OnnxBackend, ExportKind] = {"onnx": "onnx", "onnx-int8": "onnx-int8", "openvino": "onnx"}

# Part of the cache key: bump it when the export or quantization recipe changes.
_RECIPE = "1"
_OPSET = 17
# Files whose content decides the exported graph or how its inputs are made.
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
_POOLING_MODES: dict[str, Literal["mean", "cls", "max"]] = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
_SUB_BATCH = 16  # texts a run: sorted by length, so each run pads little


class EmbeddingBackendError(RuntimeError):
    """The ONNX backend could not be prepared (export, quantization, or an unsupported model)."""


def _fail(backend: str, what: str, cause: BaseException | None = None) -> EmbeddingBackendError:
    detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
    return EmbeddingBackendError(
        f"MEMORY_EMBEDDING_BACKEND={backend}: {what}{detail}. "
        "Set MEMORY_EMBEDDING_BACKEND=torch to run the model on torch instead."
    )


# --- the model folder ------------------------------------------------------------------------


def local_model_folder(name_or_path: str) -> Path:
    """The local folder of a sentence-transformers model: a path, or a name already in the
    Hugging Face cache (never downloaded)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    repo = name_or_path if "/" in name_or_path else f"sentence-transformers/{name_or_path}"
    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception as exc:
        raise EmbeddingBackendError(
            f"MEMORY_EMBEDDING_MODEL={name_or_path!r} is neither a folder nor a model in the local "
            "Hugging Face cache; the ONNX backends export from local files only"
        ) from exc


@dataclass(frozen=True, slots=True)
class _ModelLayout:
    """What ``modules.json`` and the module configs say about the pipeline after the transformer."""

    max_seq_length: int
    do_lower_case: bool
    pooling: Literal["mean", "cls", "max"]
    normalize: bool


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def _layout(folder: Path, backend: str) -> _ModelLayout:
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise _fail(backend, f"{folder} has no modules.json (not a sentence-transformers model)")
    with modules_file.open(encoding="utf-8") as handle:
        modules = json.load(handle)
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise _fail(backend, f"only Transformer, Pooling (and Normalize) models are supported, not {kinds}")
    pooling_dir = folder / str(modules[1].get("path", "1_Pooling"))
    enabled = sorted(k for k, v in _read_json(pooling_dir / "config.json").items() if k.startswith("pooling_mode_") and v is True)
    if len(enabled) != 1 or enabled[0] not in _POOLING_MODES:
        raise _fail(backend, f"pooling {enabled} is not supported (one of {sorted(_POOLING_MODES)})")
    bert_config_file = folder / "sentence_bert_config.json"
    bert_config = _read_json(bert_config_file) if bert_config_file.is_file() else {}
    max_seq_length = bert_config.get("max_seq_length")
    if not isinstance(max_seq_length, int):
        config = _read_json(folder / "config.json")
        max_seq_length = int(config.get("max_position_embeddings", 512))
    return _ModelLayout(
        max_seq_length=max_seq_length,
        do_lower_case=bool(bert_config.get("do_lower_case", False)),
        pooling=_POOLING_MODES[enabled[0]],
        normalize=kinds[-1] == "Normalize",
    )


# --- the cached export -----------------------------------------------------------------------


def _files_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    signature = []
    for name in _MODEL_FILES:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            signature.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


@functools.lru_cache(maxsize=8)
def _digest_of(folder: Path, signature: tuple[tuple[str, int, int], ...]) -> str:
    """SHA-256 of the model files (cached per process while their size and mtime hold)."""
    digest = hashlib.sha256()
    for name, _, _ in signature:
        digest.update(name.encode() + b"\0")
        with (folder / name).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _cache_key(folder: Path, backend: ExportKind) -> str:
    """Model files, backend, ONNX Runtime and torch (the exporter) versions, and the recipe."""
    signature = _files_signature(folder)
    if not any(name in ("model.safetensors", "pytorch_model.bin") for name, _, _ in signature):
        raise _fail(backend, f"{folder} holds no model.safetensors or pytorch_model.bin to export")
    versions = [importlib.metadata.version(package) for package in ("onnxruntime", "torch")]
    parts = [_digest_of(folder, signature), backend, *versions, _RECIPE, str(_OPSET)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def exported_model(folder: Path, *, backend: ExportKind, cache_dir: Path) -> Path:
    """The cached ONNX file of ``folder``'s transformer of that kind, exported when missing."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(backend, f"cannot create the model cache folder {cache_dir} (MEMORY_EMBEDDING_CACHE_DIR)", exc) from exc
    target = cache_dir / f"{backend}-{_cache_key(folder, backend)}.onnx"
    if target.is_file():
        return target
    if backend == "onnx":
        _write_atomically(target, lambda tmp: _export(folder, tmp, backend), backend)
        return target
    fp32 = exported_model(folder, backend="onnx", cache_dir=cache_dir)
    _write_atomically(target, lambda tmp: _quantize(fp32, tmp, backend), backend)
    return target


def _write_atomically(target: Path, write: Callable[[Path], None], backend: str) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp.onnx")
    os.close(fd)
    tmp = Path(name)
    started = time.perf_counter()
    try:
        write(tmp)
        os.replace(tmp, target)
    except EmbeddingBackendError:
        raise
    except Exception as exc:
        raise _fail(backend, f"writing {target.name} into {target.parent} failed", exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    log.info("embedding model prepared for %s in %.1f s: %s", backend, time.perf_counter() - started, target)


def _export(folder: Path, out: Path, backend: str) -> None:
    """``torch.onnx.export`` of the transformer: last hidden state, dynamic batch and sequence."""
    try:
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(folder))
        model.eval()
        accepted = inspect.signature(model.forward).parameters
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

        class _LastHiddenState(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state  # type: ignore[no-any-return]

        sample = tuple((torch.zeros if n == "token_type_ids" else torch.ones)((2, 16), dtype=torch.long) for n in names)
        axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(
                _LastHiddenState(model),
                sample,
                str(out),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        raise _fail(backend, f"exporting the model in {folder} to ONNX failed", exc) from exc


def _quantize(fp32: Path, out: Path, backend: str) -> None:
    """Dynamic int8: weights per output channel, activations per tensor at run time.

    Per-tensor int8 weights moved MiniLM's vectors too far (mean cosine 0.95 to the torch ones on
    LoCoMo turns); per channel gives 0.992, and leaving the feed-forward down-projections (their
    input is the GELU output, with the widest range) in float gives 0.995, min 0.98.
    """
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = onnx.load(str(fp32), load_external_data=False).graph
        down = [n.name for n in graph.node if n.op_type == "MatMul" and _is_ffn_down_projection(n.name)]
        quiet = _DropRecordsFrom("onnxruntime")
        logging.getLogger().addFilter(quiet)  # the quantizer logs each tensor on the root logger
        try:
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=down)
        finally:
            logging.getLogger().removeFilter(quiet)
    except Exception as exc:
        raise _fail(backend, f"int8 quantization of {fp32.name} failed", exc) from exc


def _is_ffn_down_projection(node: str) -> bool:
    """A BERT layer's ``output.dense`` (not ``attention.output.dense``), as the exporter names it."""
    return "/output/dense/" in node and "/attention/" not in node


class _DropRecordsFrom(logging.Filter):
    def __init__(self, package: str) -> None:
        super().__init__()
        self._part = f"{os.sep}{package}{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return self._part not in record.pathname


# --- the encoder -----------------------------------------------------------------------------


class OnnxEncoder:
    """A ``SentenceEncoder`` on an ONNX export (run by ONNX Runtime, or compiled by OpenVINO):
    ``encode`` like ``SentenceTransformer.encode``.

    One instance is meant for one thread at a time (the lane's worker), like the torch model.
    """

    def __init__(self, onnx_file: Path, folder: Path, *, threads: int, backend: OnnxBackend = "onnx") -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise _fail(backend, "tokenizers is not installed", exc) from exc
        self.backend = backend
        self.threads = threads
        self._layout = _layout(folder, backend)
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise _fail(backend, f"{folder} has no tokenizer.json")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self._layout.max_seq_length)
        self._pad_id = self._pad_token_id(folder)
        opened = _openvino_graph if backend == "openvino" else _onnxruntime_graph
        self._graph = opened(onnx_file, threads, backend)
        self._dimension = self._probe_dimension()

    @classmethod
    def load(cls, name_or_path: str, *, backend: OnnxBackend, threads: int, cache_dir: Path) -> OnnxEncoder:
        """Export (or reuse the cached export of) the model and open it (blocking: call in a thread)."""
        if backend not in _EXPORT_OF:
            raise ValueError(f"not an ONNX backend: {backend!r}")
        folder = local_model_folder(name_or_path)
        _layout(folder, backend)  # refuse an unsupported model before spending an export on it
        onnx_file = exported_model(folder, backend=_EXPORT_OF[backend], cache_dir=cache_dir)
        return cls(onnx_file, folder, threads=threads, backend=backend)

    def get_embedding_dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._layout.max_seq_length

    def encode(
        self,
        inputs: str | Sequence[str],
        /,
        *,
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """float32 vectors, one row per text in order (a 1-D vector for a single string)."""
        if kwargs:
            raise TypeError(f"OnnxEncoder.encode does not support {sorted(kwargs)}")
        if not convert_to_numpy:
            raise TypeError("OnnxEncoder.encode returns numpy arrays only")
        if isinstance(inputs, str):
            return self.encode([inputs], batch_size=batch_size, normalize_embeddings=normalize_embeddings)[0]
        texts = [text.lower() for text in inputs] if self._layout.do_lower_case else list(inputs)
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        step = max(1, min(batch_size, _SUB_BATCH))
        for start in range(0, len(order), step):
            chosen = order[start : start + step]
            out[chosen] = self._run([encodings[i].ids for i in chosen])
        if self._layout.normalize or normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)
        return out

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        """Pooled (not yet normalised) vectors of token sequences padded to the longest."""
        width = max(len(ids) for ids in sequences)
        input_ids = np.full((len(sequences), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        hidden = self._graph({"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)})
        if self._layout.pooling == "cls":
            return np.ascontiguousarray(hidden[:, 0], dtype=np.float32)
        if self._layout.pooling == "max":
            masked = np.where(mask[:, :, None] > 0, hidden, -1e9)
            return masked.max(axis=1).astype(np.float32)
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return (summed / np.maximum(weights.sum(axis=1), 1e-9)).astype(np.float32)

    def _pad_token_id(self, folder: Path) -> int:
        config = _read_json(folder / "config.json")
        pad = config.get("pad_token_id")
        if isinstance(pad, int):
            return pad
        token = self._tokenizer.token_to_id("[PAD]")
        return token if token is not None else 0

    def _probe_dimension(self) -> int:
        return int(self._run([[0, 0]]).shape[1])


# --- the runtimes of the exported graph ------------------------------------------------------

# Runs the exported transformer: feeds by input name (all of them; each runtime takes the ones
# its graph has) to the last hidden state.
_Graph = Callable[[dict[str, np.ndarray]], np.ndarray]


def _onnxruntime_graph(onnx_file: Path, threads: int, backend: str) -> _Graph:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _fail(backend, "onnxruntime is not installed", exc) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads yield instead of spinning: the two lanes' sessions, the event loop and
    # the index share the CPUs (with spinning, 2 threads beside a busy process: 42 texts/s and
    # 20 ms a query; without: 60 texts/s and 10 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise _fail(backend, f"ONNX Runtime could not load {onnx_file}", exc) from exc
    names = [item.name for item in session.get_inputs()]

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        hidden: np.ndarray = session.run(None, {name: feeds[name] for name in names})[0]
        return hidden

    return run


def _openvino_graph(onnx_file: Path, threads: int, backend: str) -> _Graph:
    """The export compiled by OpenVINO for the CPU (about 0.5 s): one stream of ``threads``
    threads, not pinned to cores (the other lane, the event loop and the index share them), at the
    plugin's default precision, bfloat16 where the CPU has bf16 units."""
    try:
        import openvino
    except ImportError as exc:
        raise _fail(backend, "openvino is not installed", exc) from exc
    config = {"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": "NO"}
    try:
        compiled = openvino.Core().compile_model(str(onnx_file), "CPU", config)
    except Exception as exc:
        raise _fail(backend, f"OpenVINO could not compile {onnx_file}", exc) from exc
    log.info("OpenVINO runs the embedding model in %s", compiled.get_property("INFERENCE_PRECISION_HINT"))
    names = [port.any_name for port in compiled.inputs]
    request = compiled.create_infer_request()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        # The request's output tensor is reused by the next call: copy it out.
        return np.array(request.infer({name: feeds[name] for name in names})[0], dtype=np.float32)

    return run
