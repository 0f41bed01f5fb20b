"""Posts a stack's preview summary as one GitLab merge-request note, updated in place.

``python -m operations.mr_note summary.md --stack dev`` is what `.gitlab-ci.yml`'s
preview jobs run. The note starts with a per-stack marker; a later push edits that
note instead of adding another. The GitLab API token comes from the environment
(``LKS_GITLAB_API_TOKEN``, a masked CI/CD variable), never from argv, and is never
printed. The project, merge request and API address come from GitLab's predefined
variables (``CI_API_V4_URL``, ``CI_PROJECT_ID``, ``CI_MERGE_REQUEST_IID``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_VARIABLE = "LKS_GITLAB_API_TOKEN"
# GitLab refuses notes over 1,000,000 characters; stay well below.
MAX_BODY = 200_000
TRUNCATED = "\n\n(truncated: the full preview is in the job log)"


def marker(stack: str) -> str:
    """The first line of a stack's note: how a later run finds it again."""
    return f"<!-- linuxkit-swarm preview: {stack} -->"


def note_body(stack: str, summary: str) -> str:
    """The note's text: the marker, then the summary (cut to GitLab's limit)."""
    text = summary if len(summary) <= MAX_BODY else summary[:MAX_BODY] + TRUNCATED
    return f"{marker(stack)}\n{text}"


def find_note(notes: Sequence[Mapping[str, Any]], stack: str, author_id: int) -> int | None:
    """The id of the stack's earlier note by this token's user, if any.

    Only the token's own notes count: a reviewer who quotes the marker must not
    have their note overwritten.
    """
    for note in notes:
        author = note.get("author") or {}
        body = note.get("body") or ""
        if author.get("id") == author_id and body.startswith(marker(stack)):
            return int(note["id"])
    return None


@dataclass(frozen=True)
class MergeRequest:
    """Where the note goes: GitLab's API and one merge request."""

    api_url: str
    project_id: str
    iid: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MergeRequest:
        """From GitLab's predefined variables of a merge-request pipeline."""
        missing = [k for k in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID") if not env.get(k)]
        if missing:
            raise NoteError(f"not a merge-request pipeline: {', '.join(missing)} unset")
        return cls(env["CI_API_V4_URL"].rstrip("/"), env["CI_PROJECT_ID"], env["CI_MERGE_REQUEST_IID"])

    def notes_url(self) -> str:
        """The merge request's notes collection."""
        project = urllib.parse.quote(self.project_id, safe="")
        return f"{self.api_url}/projects/{project}/merge_requests/{self.iid}/notes"


class NoteError(Exception):
    """The note could not be posted; the message says why (never the token)."""


class GitLabClient:
    """The four API calls this needs, authenticated with a private token."""

    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        self._api_url = api_url
        self._token = token
        self._timeout = timeout

    def _call(self, method: str, url: str, body: Mapping[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("PRIVATE-TOKEN", self._token)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise NoteError(
                f"GitLab API {method} {url}: HTTP {err.code} {err.reason}"
                " (does the token have the api scope and at least Reporter on the project?)"
            ) from None
        except urllib.error.URLError as err:
            raise NoteError(f"GitLab API {method} {url}: {err.reason}") from None

    def user_id(self) -> int:
        """The token's own user."""
        return int(self._call("GET", f"{self._api_url}/user")["id"])

    def notes(self, notes_url: str) -> list[dict[str, Any]]:
        """Every note of the merge request, page by page."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._call("GET", f"{notes_url}?per_page=100&page={page}")
            found.extend(batch)
            if len(batch) < 100:
                return found
            page += 1

    def create(self, notes_url: str, body: str) -> int:
        """A new note; its id."""
        return int(self._call("POST", notes_url, {"body": body})["id"])

    def update(self, notes_url: str, note_id: int, body: str) -> None:
        """Replaces a note's text."""
        self._call("PUT", f"{notes_url}/{note_id}", {"body": body})


def post(client: GitLabClient, mr: MergeRequest, stack: str, summary: str) -> tuple[str, int]:
    """Creates or updates the stack's note; what was done and the note id."""
    notes_url = mr.notes_url()
    body = note_body(stack, summary)
    existing = find_note(client.notes(notes_url), stack, client.user_id())
    if existing is None:
        return "created", client.create(notes_url, body)
    client.update(notes_url, existing, body)
    return "updated", existing


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Command line: ``python -m operations.mr_note SUMMARY --stack STACK``."""
    parser = argparse.ArgumentParser(prog="python -m operations.mr_note", description=__doc__)
    parser.add_argument("summary", type=Path, help="the preview summary (Markdown)")
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    token = env.get(TOKEN_VARIABLE, "")
    try:
        if not token:
            raise NoteError(
                f"{TOKEN_VARIABLE} is unset: add a project access token (api scope, Reporter)"
                " as a masked CI/CD variable"
            )
        mr = MergeRequest.from_env(env)
        summary = args.summary.read_text(encoding="utf-8")
        action, note_id = post(GitLabClient(mr.api_url, token), mr, args.stack, summary)
    except (NoteError, OSError) as err:
        print(f"mr_note: {err}", file=sys.stderr)
        return 1
    print(f"mr_note: {action} note {note_id} for stack {args.stack} on !{mr.iid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
