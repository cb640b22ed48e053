"""What the default policy's structure-kept mask leaves (README, "Structure kept"), checked on
values as MLflow returns them, independently of the proxy's own walker."""
from __future__ import annotations

import json

STRUCTURAL_KEYS = {"role", "type", "name", "id", "tool_call_id", "finish_reason", "model", "tool"}


def _is_masked_text(text: str) -> bool:
    return text == "" or (text.startswith("[masked: ") and text.endswith(" bytes]"))


def unmasked_leaves(node, path: str = "$", nested: bool = False) -> list[str]:
    """Paths of the leaves a structure-kept mask should have replaced but did not. `node` is an
    attribute's value: JSON text, or JSON already parsed by MLflow."""
    if path == "$" and isinstance(node, str) and not _is_masked_text(node) and node.lstrip()[:1] in ("{", "["):
        try:
            node = json.loads(node)
        except ValueError:
            return [f"$={node[:40]!r}"]
    if isinstance(node, dict):
        return [p for k, v in node.items()
                if not (k in STRUCTURAL_KEYS and not isinstance(v, (dict, list)))
                for p in unmasked_leaves(v, f"{path}.{k}", nested)]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in unmasked_leaves(v, f"{path}[{i}]", nested)]
    if isinstance(node, str):
        if _is_masked_text(node):
            return []
        if not nested and node.lstrip()[:1] in ("{", "["):
            try:
                return unmasked_leaves(json.loads(node), path + "<json>", True)
            except ValueError:
                pass
        return [f"{path}={node[:40]!r}"]
    if isinstance(node, bool):
        return [path] if node else []
    if isinstance(node, (int, float)):
        return [path] if node != 0 else []
    return []
