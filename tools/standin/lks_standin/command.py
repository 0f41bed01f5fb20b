"""Stand-in for ``pulumi-resource-command`` 1.2.1: ``command:local:Command`` only.

Follows the documented behaviour the program relies on: ``create`` runs on
create; an input change runs ``update`` (or ``create`` when there is none);
``delete`` runs on delete with ``PULUMI_COMMAND_STDOUT``/``STDERR`` of the last
run; commands run under ``/bin/sh -c`` (or ``interpreter``) in ``dir`` with
``environment`` added to the provider's own, and ``stdin`` on standard input.
A changed ``triggers`` list asks for replacement.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from lks_standin.server import Provider, ProviderError, serve

VERSION = "1.2.1"


def _run(props: dict[str, Any], script: str, previous: dict[str, Any] | None = None) -> tuple[str, str]:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (props.get("environment") or {}).items()})
    if previous is not None and props.get("addPreviousOutputInEnv", True):
        env["PULUMI_COMMAND_STDOUT"] = str(previous.get("stdout", ""))
        env["PULUMI_COMMAND_STDERR"] = str(previous.get("stderr", ""))
    interpreter = list(props.get("interpreter") or ["/bin/sh", "-c"])
    proc = subprocess.run(
        [*interpreter, script],
        input=props.get("stdin"),
        cwd=props.get("dir") or None,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    stdout, stderr = proc.stdout.rstrip("\n"), proc.stderr.rstrip("\n")
    if proc.returncode != 0:
        raise ProviderError(
            f"exit status {proc.returncode}: running {script!r}:\nStdout:\n{stdout}\nStderr:\n{stderr}"
        )
    return stdout, stderr


class LocalCommand:
    """``command:local:Command``."""

    replace_keys = frozenset({"triggers"})

    def create(self, props: dict[str, Any], preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", props
        stdout, stderr = _run(props, props["create"]) if props.get("create") else ("", "")
        return f"cmd-{os.urandom(8).hex()}", {**props, "stdout": stdout, "stderr": stderr}

    def read(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        return props  # a local command has nothing to read back

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any], preview: bool) -> dict[str, Any]:
        if preview:
            return news
        script = news.get("update") or news.get("create")
        stdout, stderr = _run(news, script, olds) if script else ("", "")
        return {**news, "stdout": stdout, "stderr": stderr}

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("delete"):
            _run(props, props["delete"], props)


def main() -> None:
    """Plugin entry point."""
    serve(
        Provider(
            "command",
            VERSION,
            configure=lambda config: None,
            resources={"command:local:Command": LocalCommand()},
        )
    )


if __name__ == "__main__":
    main()
