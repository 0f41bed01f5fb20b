"""Structural rules of the CI pipelines that matter to operators, as pure functions.

Each check takes the parsed pipelines (GitHub workflows, .gitlab-ci.yml) and returns
its problems, one readable line each; an empty list means the rule holds. The tests
run them on the committed files and on broken copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Stacks with a Pulumi.<stack>.yaml that CI never deploys: `local` runs the program
# against the embedded vCenter simulator that scripts/local-up.sh starts.
SIMULATOR_STACKS = frozenset({"local"})
POLICY_PACK = "--policy-pack policy"
STREAMING_PREVIEW = "PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true"
MAIN_REF = "github.ref == 'refs/heads/main'"
DEFAULT_BRANCH = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
STACK_EXPR = "${{ matrix.stack }}"
# GitLab top-level keys that are not jobs.
GITLAB_KEYWORDS = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache"}
    | {"before_script", "after_script", "spec"}
)
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|TOKEN|SECRET|BACKEND_URL|PRIVATE_KEY|CREDENTIAL", re.I)
# A value that only names where the secret comes from.
SECRET_REFERENCE = re.compile(
    r"^(\$\{\{\s*(secrets|vars)\.[A-Za-z0-9_]+\s*\}\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\})$"
)
# Literals that are secrets whatever key they sit under.
SECRET_LITERAL = re.compile(
    r"postgres(ql)?://|-----BEGIN [A-Z ]*PRIVATE KEY|glpat-|gh[pousr]_[A-Za-z0-9]{20}"
)
# `pulumi up` / `pulumi preview` as a command: at the start of a line (after any
# VAR=value) or after && || ; | (not inside an echo'd message).
_COMMAND_START = r"(?:^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*|(?:&&|\|\||;|\|)\s*)"
PULUMI_UP = re.compile(_COMMAND_START + r"pulumi\s+up\b", re.M)
PULUMI_PREVIEW = re.compile(_COMMAND_START + r"pulumi\s+preview\b", re.M)


@dataclass
class Pipelines:
    """The parsed pipeline files: workflows by file name, and .gitlab-ci.yml."""

    github: dict[str, dict[Any, Any]]
    gitlab: dict[str, Any]


def load(repo: Path) -> Pipelines:
    """Parses .github/workflows/*.yml and .gitlab-ci.yml below REPO."""
    workflows = {
        p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((repo / ".github" / "workflows").glob("*.y*ml"))
    }
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    return Pipelines(workflows, gitlab)


def shipped_stacks(repo: Path) -> list[str]:
    """The stacks CI deploys: every Pulumi.<stack>.yaml but the simulator's."""
    names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in repo.glob("Pulumi.*.yaml"))
    return sorted(set(names) - SIMULATOR_STACKS)


# ---------------------------------------------------------------- reading jobs


def _triggers(workflow: Mapping[Any, Any]) -> Any:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


def github_jobs(p: Pipelines) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, job id, job) of every workflow job."""
    for file, workflow in p.github.items():
        for job_id, job in (workflow.get("jobs") or {}).items():
            yield file, job_id, job


def github_script(job: Mapping[str, Any]) -> str:
    """Every `run:` of a job, one after the other."""
    return "\n".join(str(step.get("run", "")) for step in job.get("steps") or [])


def _merge(base: Any, override: Any) -> Any:
    # GitLab's `extends`: hashes merge key by key, anything else is replaced.
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _resolve(doc: Mapping[str, Any], name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f".gitlab-ci.yml: extends loop {' -> '.join((*seen, name))}")
    job = dict(doc[name])
    parents = job.pop("extends", [])
    resolved: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        resolved = _merge(resolved, _resolve(doc, parent, (*seen, name)))
    return _merge(resolved, job)  # type: ignore[no-any-return]


def gitlab_jobs(p: Pipelines) -> dict[str, dict[str, Any]]:
    """Every runnable GitLab job (not the hidden `.templates`), `extends` resolved."""
    return {
        name: _resolve(p.gitlab, name)
        for name, value in p.gitlab.items()
        if name not in GITLAB_KEYWORDS and not name.startswith(".") and isinstance(value, dict)
    }


def gitlab_script(job: Mapping[str, Any]) -> str:
    """A GitLab job's before_script and script lines."""
    lines: list[Any] = []
    for key in ("before_script", "script"):
        value = job.get(key) or []
        lines.extend([value] if isinstance(value, str) else value)
    return "\n".join(str(line) for line in lines)


def _github_stacks(job: Mapping[str, Any]) -> list[str]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    stacks = matrix.get("stack") if isinstance(matrix, dict) else None
    return [str(s) for s in stacks] if isinstance(stacks, list) else []


def _gitlab_stack(job: Mapping[str, Any]) -> str:
    return str((job.get("variables") or {}).get("STACK", ""))


# ---------------------------------------------------------------- the checks


def up_concurrency_problems(p: Pipelines) -> list[str]:
    """Every `up` job is serialized per stack and never cancelled half-way."""
    problems: list[str] = []
    for file, job_id, job in github_jobs(p):
        if not PULUMI_UP.search(github_script(job)):
            continue
        where = f"{file}: job {job_id}"
        top = p.github[file].get("concurrency")
        if isinstance(top, dict) and top.get("cancel-in-progress") is not False:
            problems.append(f"{file}: workflow concurrency must say cancel-in-progress: false")
        concurrency = job.get("concurrency")
        group = concurrency.get("group", "") if isinstance(concurrency, dict) else ""
        if not _github_stacks(job) or STACK_EXPR not in str(group):
            problems.append(f"{where}: concurrency group must be keyed by {STACK_EXPR} (got {group!r})")
        if not isinstance(concurrency, dict) or concurrency.get("cancel-in-progress") is not False:
            problems.append(f"{where}: concurrency must say cancel-in-progress: false")
        if STACK_EXPR not in str(job.get("environment", "")):
            problems.append(f"{where}: environment must be the stack ({STACK_EXPR})")
    for name, job in gitlab_jobs(p).items():
        if not PULUMI_UP.search(gitlab_script(job)):
            continue
        stack = _gitlab_stack(job)
        if not stack or job.get("resource_group") != stack:
            problems.append(
                f".gitlab-ci.yml: job {name}: resource_group must be its stack {stack!r}"
                f" (got {job.get('resource_group')!r})"
            )
        if job.get("interruptible") is not False:
            problems.append(f".gitlab-ci.yml: job {name}: must say interruptible: false")
        environment = job.get("environment")
        env_name = environment.get("name") if isinstance(environment, dict) else environment
        if not stack or env_name != stack:
            problems.append(f".gitlab-ci.yml: job {name}: environment must be its stack {stack!r}")
    return problems


def up_branch_problems(p: Pipelines) -> list[str]:
    """`up` runs only for pushes to main (GitHub) or the default branch (GitLab)."""
    problems: list[str] = []
    for file, job_id, job in github_jobs(p):
        if not PULUMI_UP.search(github_script(job)):
            continue
        triggers = _triggers(p.github[file])
        if triggers != {"push": {"branches": ["main"]}}:
            problems.append(
                f"{file}: a workflow with `pulumi up` must run only on push to main (got {triggers!r})"
            )
        if MAIN_REF not in str(job.get("if", "")):
            problems.append(f"{file}: job {job_id}: needs `if: {MAIN_REF}`")
    for name, job in gitlab_jobs(p).items():
        if not PULUMI_UP.search(gitlab_script(job)):
            continue
        rules = job.get("rules")
        if "only" in job or "except" in job:
            problems.append(f".gitlab-ci.yml: job {name}: use rules, not only/except")
        if not rules or any(DEFAULT_BRANCH not in str(rule.get("if", "")) for rule in rules):
            problems.append(f".gitlab-ci.yml: job {name}: every rule must require {DEFAULT_BRANCH}")
    return problems


def policy_pack_problems(p: Pipelines) -> list[str]:
    """Every preview and up passes the policy pack (a preview as an event stream); both systems have both."""
    problems: list[str] = []
    scripts = [
        (f"{file}: job {job_id}", github_script(job), "github") for file, job_id, job in github_jobs(p)
    ]
    scripts += [
        (f".gitlab-ci.yml: job {name}", gitlab_script(job), "gitlab") for name, job in gitlab_jobs(p).items()
    ]
    seen: set[tuple[str, str]] = set()
    for where, script, system in scripts:
        for line in script.replace("\\\n", " ").splitlines():
            for command, pattern in (("preview", PULUMI_PREVIEW), ("up", PULUMI_UP)):
                if pattern.search(line):
                    seen.add((system, command))
                    if POLICY_PACK not in line:
                        problems.append(f"{where}: `pulumi {command}` without {POLICY_PACK}: {line.strip()}")
                    if command == "preview" and STREAMING_PREVIEW not in line:
                        # Plain `preview --json` drops policy events: the summary would miss them.
                        problems.append(
                            f"{where}: `pulumi preview` without {STREAMING_PREVIEW}: {line.strip()}"
                        )
    for system in ("github", "gitlab"):
        for command in ("preview", "up"):
            if (system, command) not in seen:
                problems.append(f"{system}: no job runs `pulumi {command}`")
    return problems


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield path, None, value
            yield from _walk(value, f"{path}[{i}]")


def secret_problems(p: Pipelines) -> list[str]:
    """No secret value in the files: secret-named keys only reference the CI store."""
    problems: list[str] = []
    docs: list[tuple[str, Any]] = [*p.github.items(), (".gitlab-ci.yml", p.gitlab)]
    for file, doc in docs:
        for path, key, value in _walk(doc, ""):
            named_secret = isinstance(key, str) and SECRET_NAME.search(key) is not None
            if (
                named_secret
                and isinstance(value, str)
                and value
                and not SECRET_REFERENCE.match(value.strip())
            ):
                problems.append(
                    f"{file}: {path}.{key} holds a literal; reference the CI secret store instead"
                )
            found = SECRET_LITERAL.search(value) if isinstance(value, str) else None
            if found:
                problems.append(f"{file}: {path}.{key} holds a secret literal ({found[0]}...)")
    return problems


def stack_list_problems(p: Pipelines, shipped: list[str]) -> list[str]:
    """Every preview and up job covers exactly the shipped stacks, in both systems."""
    problems: list[str] = []
    want = sorted(shipped)
    for file, job_id, job in github_jobs(p):
        script = github_script(job)
        if PULUMI_UP.search(script) or PULUMI_PREVIEW.search(script):
            got = sorted(_github_stacks(job))
            if got != want:
                problems.append(f"{file}: job {job_id}: matrix stacks {got}, shipped stacks {want}")
    for command, pattern in (("preview", PULUMI_PREVIEW), ("up", PULUMI_UP)):
        jobs = {name: job for name, job in gitlab_jobs(p).items() if pattern.search(gitlab_script(job))}
        got = sorted(_gitlab_stack(job) for job in jobs.values())
        if got != want:
            problems.append(
                f".gitlab-ci.yml: `pulumi {command}` jobs cover stacks {got}, shipped stacks {want}"
            )
        for name, job in jobs.items():
            if name != f"{command}:{_gitlab_stack(job)}":
                problems.append(
                    f".gitlab-ci.yml: job {name} runs stack {_gitlab_stack(job)!r}: name it {command}:<stack>"
                )
    return problems
