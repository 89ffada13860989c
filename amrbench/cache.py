"""Where generated datasets and shared artifacts live on disk (``AMRBENCH_CACHE``)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("AMRBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "amrbench")
    return Path(root)


def stable_hash(config, length: int = 16) -> str:
    """sha256 of canonical JSON: key order, spacing and int/float spelling never matter."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
