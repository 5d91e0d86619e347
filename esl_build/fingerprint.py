"""Canonical JSON and content hashes: the only place inputs are hashed."""

from __future__ import annotations

import hashlib
import json


def canonical_json(data: object) -> str:
    """JSON with sorted keys, no spaces and real Unicode: equal data gives equal text."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(data: object) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of ``data``."""
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Plain hex sha256 of raw bytes (file contents)."""
    return hashlib.sha256(data).hexdigest()
