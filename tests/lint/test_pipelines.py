"""The CI pipelines: actionlint, the published schemas, and the rules operators rely on.

Each structural rule runs on the committed files (no problem) and on a broken copy
(the problem is named), so a rule that cannot fail would show here.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lint import pipeline_checks as checks

pytestmark = pytest.mark.lint

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
GITLAB_CI = REPO / ".gitlab-ci.yml"
BUILD_ACTIONLINT = "bash tools/build.sh actionlint && source tools/env.sh"
# check-jsonschema must validate with the schemas it vendors: any download attempt
# goes to a closed port and fails the run.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def _actionlint() -> list[str]:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.fail(f"actionlint is not on PATH: {BUILD_ACTIONLINT}")
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        # actionlint checks the run: scripts with shellcheck only when it finds one.
        pytest.fail("shellcheck is not on PATH: apt-get install -y shellcheck")
    return [actionlint, "-no-color", "-shellcheck", shellcheck, "-pyflakes", ""]


def _check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: bash scripts/bootstrap-venv.sh (requirements-dev.txt pins it)")
    return subprocess.run(
        [str(exe), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        check=False,
        timeout=120,
    )


def test_the_pipelines_exist() -> None:
    assert {p.name for p in WORKFLOWS} == {"pull-request.yml", "deploy.yml"}
    assert GITLAB_CI.is_file()


# ---------------------------------------------------------------- the linters


def test_actionlint_passes_on_the_workflows() -> None:
    result = subprocess.run(
        [*_actionlint(), *map(str, WORKFLOWS)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_and_its_shellcheck_catch_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  up:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: pulumi up --stack ${{ matrix.stack }}\n"  # no matrix: expression error
        "      - run: cd $HOME/x\n",  # unquoted: shellcheck SC2086
        encoding="utf-8",
    )
    result = subprocess.run(
        [*_actionlint(), str(bad)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "matrix" in result.stdout
    assert "SC2086" in result.stdout


def test_workflows_match_the_github_workflow_schema_offline() -> None:
    result = _check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_ci_matches_the_gitlab_schema_offline() -> None:
    result = _check_jsonschema("vendor.gitlab-ci", GITLAB_CI)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "source", "breakage"),
    [
        ("vendor.github-workflows", "deploy.yml", lambda d: d["jobs"]["up"].pop("runs-on")),
        (
            "vendor.github-workflows",
            "pull-request.yml",
            lambda d: d["jobs"]["preview"].update({"environmnet": "dev"}),
        ),
        ("vendor.gitlab-ci", ".gitlab-ci.yml", lambda d: d["up:dev"].update({"resource_group": ["dev"]})),
        ("vendor.gitlab-ci", ".gitlab-ci.yml", lambda d: d["up:dev"].update({"when": "sometimes"})),
    ],
)
def test_the_schemas_reject_a_broken_copy(
    tmp_path: Path, schema: str, source: str, breakage: Callable[[dict[Any, Any]], object]
) -> None:
    path = GITLAB_CI if source == ".gitlab-ci.yml" else REPO / ".github" / "workflows" / source
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # PyYAML reads `on` as True; write it back as `on`
        doc["on"] = doc.pop(True)
    breakage(doc)
    broken = tmp_path / source
    broken.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    result = _check_jsonschema(schema, broken)
    assert result.returncode == 1, result.stdout
    assert "Schema validation errors" in result.stdout


# ---------------------------------------------------------------- the rules


@pytest.fixture
def pipelines() -> checks.Pipelines:
    return checks.load(REPO)


def _broken(p: checks.Pipelines, change: Callable[[checks.Pipelines], object]) -> checks.Pipelines:
    copied = copy.deepcopy(p)
    change(copied)
    return copied


def _up(p: checks.Pipelines) -> dict[str, Any]:
    job: dict[str, Any] = p.github["deploy.yml"]["jobs"]["up"]
    return job


def _preview_script(p: checks.Pipelines) -> dict[str, Any]:
    job: dict[str, Any] = p.gitlab[".preview"]
    return job


def test_shipped_stacks_are_the_pulumi_stack_files_but_the_simulators() -> None:
    stacks = checks.shipped_stacks(REPO)
    assert stacks == sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in REPO.glob("Pulumi.*.yaml") if "local" not in p.name
    )
    assert "dev" in stacks


def test_the_committed_pipelines_keep_every_rule(pipelines: checks.Pipelines) -> None:
    assert checks.up_concurrency_problems(pipelines) == []
    assert checks.up_branch_problems(pipelines) == []
    assert checks.policy_pack_problems(pipelines) == []
    assert checks.secret_problems(pipelines) == []
    assert checks.stack_list_problems(pipelines, checks.shipped_stacks(REPO)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: _up(p)["concurrency"].update({"cancel-in-progress": True}), "cancel-in-progress: false"),
        (lambda p: _up(p)["concurrency"].pop("cancel-in-progress"), "cancel-in-progress: false"),
        (lambda p: _up(p)["concurrency"].update({"group": "pulumi-up"}), "keyed by ${{ matrix.stack }}"),
        (lambda p: _up(p).pop("concurrency"), "keyed by ${{ matrix.stack }}"),
        (lambda p: _up(p).update({"environment": "production"}), "environment must be the stack"),
        (
            lambda p: p.github["deploy.yml"].update(
                {"concurrency": {"group": "x", "cancel-in-progress": True}}
            ),
            "workflow concurrency",
        ),
        (
            lambda p: p.gitlab["up:dev"].update({"resource_group": "deploy"}),
            "resource_group must be its stack",
        ),
        (lambda p: p.gitlab["up:dev"].pop("resource_group"), "resource_group must be its stack"),
        (lambda p: p.gitlab[".up"].update({"interruptible": True}), "interruptible: false"),
        (
            lambda p: p.gitlab["up:dev"].update({"environment": {"name": "prod"}}),
            "environment must be its stack",
        ),
    ],
)
def test_up_concurrency_rule_fails_on_a_broken_copy(
    pipelines: checks.Pipelines, change: Callable[[checks.Pipelines], object], expected: str
) -> None:
    problems = checks.up_concurrency_problems(_broken(pipelines, change))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p.github["deploy.yml"].update({True: {"push": {"branches": ["main", "dev"]}}}),
            "only on push",
        ),
        (
            lambda p: p.github["deploy.yml"].update({True: {"push": None, "workflow_dispatch": None}}),
            "only on push",
        ),
        (lambda p: _up(p).pop("if"), "refs/heads/main"),
        (lambda p: p.gitlab[".up"].update({"rules": [{"when": "manual"}]}), "every rule must require"),
        (lambda p: p.gitlab[".up"].update({"rules": [{"if": '$CI_COMMIT_BRANCH == "dev"'}]}), "every rule"),
        (lambda p: p.gitlab[".up"].pop("rules"), "every rule must require"),
        (lambda p: p.gitlab["up:dev"].update({"only": ["branches"]}), "not only/except"),
    ],
)
def test_up_branch_rule_fails_on_a_broken_copy(
    pipelines: checks.Pipelines, change: Callable[[checks.Pipelines], object], expected: str
) -> None:
    problems = checks.up_branch_problems(_broken(pipelines, change))
    assert any(expected in problem for problem in problems), problems


def _drop_policy_pack(script: list[str]) -> list[str]:
    return [line.replace(" --policy-pack policy", "") for line in script]


def _github_drop_policy_pack(p: checks.Pipelines, file: str, job: str) -> None:
    for step in p.github[file]["jobs"][job]["steps"]:
        if "run" in step:
            step["run"] = step["run"].replace(" --policy-pack policy", "")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: _github_drop_policy_pack(p, "deploy.yml", "up"), "`pulumi up` without --policy-pack"),
        (lambda p: _github_drop_policy_pack(p, "pull-request.yml", "preview"), "`pulumi preview` without"),
        (
            lambda p: p.gitlab[".up"].update({"script": _drop_policy_pack(p.gitlab[".up"]["script"])}),
            "up` without",
        ),
        (
            lambda p: _preview_script(p).update({"script": _drop_policy_pack(_preview_script(p)["script"])}),
            "preview` without",
        ),
        (lambda p: p.gitlab[".up"].update({"script": ["true && pulumi up --yes"]}), "`pulumi up` without"),
        (
            lambda p: _preview_script(p).update(
                {"script": [s.replace(checks.STREAMING_PREVIEW, "") for s in _preview_script(p)["script"]]}
            ),
            f"`pulumi preview` without {checks.STREAMING_PREVIEW}",
        ),
        (lambda p: p.github.pop("deploy.yml"), "github: no job runs `pulumi up`"),
        (lambda p: p.gitlab.pop("preview:dev"), "gitlab: no job runs `pulumi preview`"),
    ],
)
def test_policy_pack_rule_fails_on_a_broken_copy(
    pipelines: checks.Pipelines, change: Callable[[checks.Pipelines], object], expected: str
) -> None:
    problems = checks.policy_pack_problems(_broken(pipelines, change))
    assert any(expected in problem for problem in problems), problems


def _step_env(p: checks.Pipelines) -> dict[str, Any]:
    step = next(s for s in _up(p)["steps"] if "pulumi up" in s.get("run", ""))
    env: dict[str, Any] = step["env"]
    return env


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: _step_env(p).update({"PULUMI_CONFIG_PASSPHRASE": "correct horse"}),
            "PULUMI_CONFIG_PASSPHRASE holds",
        ),
        (
            lambda p: _step_env(p).update({"STATE_BACKEND_URL": "${{ secrets.PULUMI_BACKEND_URL }}x"}),
            "STATE_BACKEND_URL holds a literal",
        ),
        (
            lambda p: p.gitlab.update(
                {"variables": {"PULUMI_BACKEND_URL": "postgres://ci:pw@db:5432/pulumi"}}
            ),
            "secret literal (postgres://",
        ),
        (
            lambda p: p.gitlab[".up"]["variables"].update({"LKS_GITLAB_API_TOKEN": "abc123"}),
            "holds a literal",
        ),
        (
            lambda p: p.gitlab[".up"]["script"].append("echo '-----BEGIN OPENSSH PRIVATE KEY-----' > k"),
            "secret literal (-----BEGIN",
        ),
    ],
)
def test_secret_rule_fails_on_a_broken_copy(
    pipelines: checks.Pipelines, change: Callable[[checks.Pipelines], object], expected: str
) -> None:
    problems = checks.secret_problems(_broken(pipelines, change))
    assert any(expected in problem for problem in problems), problems


def _add_gitlab_stack(p: checks.Pipelines, stack: str) -> None:
    p.gitlab[f"preview:{stack}"] = {"extends": ".preview", "variables": {"STACK": stack}}
    p.gitlab[f"up:{stack}"] = {
        "extends": ".up",
        "variables": {"STACK": stack},
        "environment": {"name": stack},
        "resource_group": stack,
    }


def _add_github_stack(p: checks.Pipelines, stack: str) -> None:
    p.github["pull-request.yml"]["jobs"]["preview"]["strategy"]["matrix"]["stack"].append(stack)
    _up(p)["strategy"]["matrix"]["stack"].append(stack)


@pytest.mark.parametrize(
    ("change", "shipped", "expected"),
    [
        # A new Pulumi.prod.yaml that no pipeline deploys.
        (lambda p: None, ["dev", "prod"], "shipped stacks ['dev', 'prod']"),
        # GitHub gains a stack GitLab lacks.
        (lambda p: _add_github_stack(p, "prod"), ["dev"], "matrix stacks ['dev', 'prod']"),
        # GitLab gains a stack GitHub lacks.
        (lambda p: _add_gitlab_stack(p, "prod"), ["dev"], "cover stacks ['dev', 'prod']"),
        # Only the deploy workflow has the new stack.
        (
            lambda p: _up(p)["strategy"]["matrix"]["stack"].append("prod"),
            ["dev", "prod"],
            "job preview: matrix",
        ),
        # A GitLab job named for one stack that runs another.
        (lambda p: p.gitlab["up:dev"]["variables"].update({"STACK": "prod"}), ["dev"], "name it up:<stack>"),
    ],
)
def test_stack_list_rule_fails_on_a_broken_copy(
    pipelines: checks.Pipelines,
    change: Callable[[checks.Pipelines], object],
    shipped: list[str],
    expected: str,
) -> None:
    problems = checks.stack_list_problems(_broken(pipelines, change), shipped)
    assert any(expected in problem for problem in problems), problems


def test_stack_list_rule_holds_when_a_stack_is_added_everywhere(pipelines: checks.Pipelines) -> None:
    def add(p: checks.Pipelines) -> None:
        _add_github_stack(p, "prod")
        _add_gitlab_stack(p, "prod")

    broken = _broken(pipelines, add)
    assert checks.stack_list_problems(broken, ["dev", "prod"]) == []
    assert checks.up_concurrency_problems(broken) == []
