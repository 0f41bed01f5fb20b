"""``python -m operations.preview_summary [PREVIEW_JSON|-] [--stack NAME]``: a PR comment.

Reads a `pulumi preview --json` document (a file, or stdin for ``-`` or no file) and
writes its markdown summary (``linuxkit_swarm.preview_summary``) to stdout. Exit 0 on
a preview document, also one of a failed preview; 2 with a message on stderr when the
input is not one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linuxkit_swarm.preview_summary import PreviewError, summary_markdown


def main(argv: list[str] | None = None) -> int:
    """Run the command; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m operations.preview_summary",
        description="Summarize `pulumi preview --json` output as markdown for a pull request.",
    )
    parser.add_argument("preview", nargs="?", default="-", help="the preview JSON file; - or none: stdin")
    parser.add_argument("--stack", help="stack name for the title (default: the stack in the URNs)")
    args = parser.parse_args(argv)
    source = "stdin" if args.preview == "-" else args.preview
    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text(encoding="utf-8")
        markdown = summary_markdown(text, args.stack)
    except (OSError, UnicodeDecodeError) as err:
        print(f"preview_summary: cannot read {source}: {err}", file=sys.stderr)
        return 2
    except PreviewError as err:
        print(f"preview_summary: {source}: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
