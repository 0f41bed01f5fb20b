"""operations.mr_note: one merge-request note per stack, updated, never duplicated.

GitLab cannot run here: a small HTTP server speaks the four notes API calls the
module makes (the double), and records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from operations import mr_note

TOKEN = "glpat-not-a-real-token-0123456789"
BOT_ID = 42


class FakeGitLab:
    """Notes of one merge request (project 7, !3) kept in memory."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str | None]] = []
        self.next_id = 100

    def add(self, body: str, author_id: int) -> int:
        self.next_id += 1
        self.notes.append({"id": self.next_id, "body": body, "author": {"id": author_id}})
        return self.next_id


@pytest.fixture
def gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            fake.requests.append((self.command, self.path, body))
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                self._reply(401, {"message": "401 Unauthorized"})
                return
            url = urlsplit(self.path)
            base = "/api/v4/projects/7/merge_requests/3/notes"
            if self.command == "GET" and url.path == "/api/v4/user":
                self._reply(200, {"id": BOT_ID})
            elif self.command == "GET" and url.path == base:
                query = parse_qs(url.query)
                page, per_page = int(query["page"][0]), int(query["per_page"][0])
                self._reply(200, fake.notes[(page - 1) * per_page : page * per_page])
            elif self.command == "POST" and url.path == base:
                text = parse_qs(body or "")["body"][0]
                self._reply(201, {"id": fake.add(text, BOT_ID)})
            elif self.command == "PUT" and url.path.startswith(base + "/"):
                note_id = int(url.path.rsplit("/", 1)[1])
                note = next(n for n in fake.notes if n["id"] == note_id)
                note["body"] = parse_qs(body or "")["body"][0]
                self._reply(200, note)
            else:
                self._reply(404, {"message": "404 Not Found"})

        do_GET = do_POST = do_PUT = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()


def _env(api: str, token: str = TOKEN) -> dict[str, str]:
    return {
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        mr_note.TOKEN_VARIABLE: token,
    }


def _summary(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "summary.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_find_note_takes_only_the_tokens_own_note_of_that_stack() -> None:
    notes = [
        {"id": 1, "body": mr_note.marker("dev") + "\nquoted by a reviewer", "author": {"id": 5}},
        {"id": 2, "body": mr_note.marker("prod") + "\nother stack", "author": {"id": BOT_ID}},
        {"id": 3, "body": "> " + mr_note.marker("dev"), "author": {"id": BOT_ID}},
        {"id": 4, "body": mr_note.marker("dev") + "\nmine", "author": {"id": BOT_ID}},
    ]
    assert mr_note.find_note(notes, "dev", BOT_ID) == 4
    assert mr_note.find_note(notes, "prod", BOT_ID) == 2
    assert mr_note.find_note(notes, "staging", BOT_ID) is None


def test_note_body_starts_with_the_marker_and_is_cut_to_the_limit() -> None:
    assert mr_note.note_body("dev", "ok") == mr_note.marker("dev") + "\nok"
    long = mr_note.note_body("dev", "x" * (mr_note.MAX_BODY + 10))
    assert long.endswith(mr_note.TRUNCATED)
    assert len(long) == len(mr_note.marker("dev")) + 1 + mr_note.MAX_BODY + len(mr_note.TRUNCATED)


def test_first_run_creates_then_updates_the_same_note(
    gitlab: tuple[FakeGitLab, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, api = gitlab
    fake.add(mr_note.marker("dev") + "\nsomeone else's copy", author_id=5)
    for i in range(150):  # more than one page of notes
        fake.add(f"review comment {i}", author_id=6)

    assert mr_note.main([str(_summary(tmp_path, "1 to update")), "--stack", "dev"], _env(api)) == 0
    assert mr_note.main([str(_summary(tmp_path, "2 to update")), "--stack", "dev"], _env(api)) == 0
    assert mr_note.main([str(_summary(tmp_path, "policy violation")), "--stack", "prod"], _env(api)) == 0

    mine = [n for n in fake.notes if n["author"]["id"] == BOT_ID]
    assert [n["body"] for n in mine] == [
        mr_note.marker("dev") + "\n2 to update",
        mr_note.marker("prod") + "\npolicy violation",
    ]
    out = capsys.readouterr().out
    assert "created note" in out and "updated note" in out
    assert TOKEN not in out
    assert all(TOKEN not in path and TOKEN not in (body or "") for _, path, body in fake.requests)


def test_a_refused_token_fails_without_printing_it(
    gitlab: tuple[FakeGitLab, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, api = gitlab
    code = mr_note.main(
        [str(_summary(tmp_path, "x")), "--stack", "dev"], _env(api, token="glpat-wrong-wrong")
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "HTTP 401" in err and "api scope" in err
    assert "glpat-wrong-wrong" not in err


def test_missing_token_or_merge_request_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = str(_summary(tmp_path, "x"))
    assert mr_note.main([summary, "--stack", "dev"], {"CI_PROJECT_ID": "7"}) == 1
    assert mr_note.TOKEN_VARIABLE in capsys.readouterr().err
    assert mr_note.main([summary, "--stack", "dev"], {mr_note.TOKEN_VARIABLE: TOKEN}) == 1
    assert "CI_MERGE_REQUEST_IID" in capsys.readouterr().err
