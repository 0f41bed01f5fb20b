"""Render Pulumi.yaml's ``config:`` block and README's config tables from the schema.

    .venv/bin/python scripts/config_docs.py          rewrite both in place
    .venv/bin/python scripts/config_docs.py --check  exit 1 with a diff when either differs

The schema is ``linuxkit_swarm/config_schema.py``. README tables sit between
``<!-- config-table:NAME -->`` and ``<!-- /config-table:NAME -->``; text outside
the markers (and the comment above Pulumi.yaml's ``config:``) stays hand-written.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project root is not on sys.path
    sys.path.insert(0, str(ROOT))

from linuxkit_swarm import config_schema as schema  # noqa: E402
from linuxkit_swarm.config_schema import Key  # noqa: E402


def tables() -> dict[str, tuple[str, str, tuple[Key, ...]]]:
    """README table name -> (first column's header, prefix shown before each name, keys)."""
    return {
        "project": ("key", "", schema.PROJECT_KEYS),
        "vsphere": ("key", f"{schema.VSPHERE}:", schema.VSPHERE_KEYS),
        "image": ("field", "", schema.IMAGE_FIELDS),
        "workers": ("field", "", schema.WORKER_FIELDS),
        "rollout": ("field", "", schema.ROLLOUT_FIELDS),
    }


_CONFIG_BLOCK = re.compile(r"^config:\n(?:[ \t]+.*\n)*", re.MULTILINE)


class _Dumper(yaml.SafeDumper):
    """Writes an empty string as ``""``, which reads as "empty" better than ``''``."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if value == "" else None)


_Dumper.add_representer(str, _represent_str)


def pulumi_declarable(key: Key) -> bool:
    """Whether Pulumi's project schema can declare the key.

    It has no object type, and a declared key is either required or has a
    default, which for a secret would have to be encrypted: an optional secret
    cannot be declared.
    """
    return key.type != "object" and not (key.secret and not key.required)


def pulumi_config() -> dict[str, dict[str, Any]]:
    """Pulumi.yaml's ``config:`` mapping for the project keys it can declare."""
    config: dict[str, dict[str, Any]] = {}
    for key in schema.PROJECT_KEYS:
        if not pulumi_declarable(key):
            continue
        entry: dict[str, Any] = {"type": key.type}
        if key.items is not None:
            entry["items"] = {"type": key.items}
        entry["description"] = key.description
        if key.secret:
            entry["secret"] = True
        if not key.required:
            entry["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
        config[key.name] = entry
    return config


def render_pulumi_yaml(text: str) -> str:
    """``text`` (Pulumi.yaml) with its ``config:`` block rendered from the schema."""
    block = yaml.dump(
        {"config": pulumi_config()}, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )
    if len(_CONFIG_BLOCK.findall(text)) != 1:
        raise ValueError("Pulumi.yaml needs exactly one top-level `config:` block")
    return _CONFIG_BLOCK.sub(lambda _: block, text)


def type_cell(key: Key) -> str:
    """The README's type: ``secret string``, ``list of strings``, ``integer`` ..."""
    shown = f"list of {key.items}s" if key.type == "array" else key.type
    return f"secret {shown}" if key.secret else shown


def default_cell(key: Key) -> str:
    """The README's default: a literal in backticks, or required / unset / a note."""
    if key.default is schema.REQUIRED:
        return "required"
    if key.default_doc is not None:
        return key.default_doc
    if key.default is schema.UNSET:
        return "unset"
    value = key.default
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, tuple):
        value = list(value)
    elif isinstance(value, Mapping):
        value = dict(value)
    return f"`{json.dumps(value)}`"


def render_table(name: str) -> str:
    """One README table: ``key | type | default | meaning``, a row per key."""
    first, prefix, keys = tables()[name]
    rows = [f"| {first} | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key in keys:
        cells = (f"`{prefix}{key.name}`", type_cell(key), default_cell(key), key.description)
        rows.append("| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def render_readme(text: str) -> str:
    """``text`` (README.md) with every marked table rendered from the schema."""
    for name in tables():
        pattern = re.compile(
            rf"(<!-- config-table:{name} -->\n).*?(<!-- /config-table:{name} -->)", re.DOTALL
        )
        matches = list(pattern.finditer(text))
        if len(matches) != 1:
            raise ValueError(f"README.md needs one pair of config-table:{name} markers")
        text = text[: matches[0].end(1)] + render_table(name) + text[matches[0].start(2) :]
    return text


RENDERERS = {"Pulumi.yaml": render_pulumi_yaml, "README.md": render_readme}


def drift(root: Path = ROOT) -> dict[str, str]:
    """A unified diff per file that differs from the schema (none: all in sync)."""
    diffs = {}
    for name, render in RENDERERS.items():
        current = (root / name).read_text(encoding="utf-8")
        wanted = render(current)
        if wanted != current:
            diffs[name] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    wanted.splitlines(keepends=True),
                    f"{name} (now)",
                    f"{name} (from the schema)",
                )
            )
    return diffs


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Rewrite the files, or with ``--check`` report their drift; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report differences (exit 1)")
    args = parser.parse_args(argv)
    diffs = drift(root)
    if args.check:
        for diff in diffs.values():
            sys.stdout.write(diff)
        if diffs:
            print(f"out of date: {', '.join(diffs)}; run scripts/config_docs.py", file=sys.stderr)
        return 1 if diffs else 0
    for name, render in RENDERERS.items():
        if name in diffs:
            path = root / name
            path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"rewrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
