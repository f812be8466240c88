"""Shell completion, click's: the source each shell loads is produced, and bash completes with it as the README says."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROFILER = Path(sys.executable).parent / "profiler"


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{PROFILER.parent}{os.pathsep}{os.environ['PATH']}", **extra}


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _profiler_completion profiler"),
        ("zsh", "#compdef profiler"),
        ("fish", "complete"),
    ],
)
def test_the_completion_source_is_produced(shell: str, marker: str) -> None:
    result = subprocess.run(
        [PROFILER], env=environment(_PROFILER_COMPLETE=f"{shell}_source"), capture_output=True, text=True, check=True
    )
    assert marker in result.stdout
    assert result.stderr == ""


def bash_completions(*words: str) -> list[str]:
    """What bash offers after `profiler WORDS`, through the function the README's line defines."""
    script = (
        'eval "$(_PROFILER_COMPLETE=bash_source profiler)"\n'
        f"COMP_WORDS=(profiler {' '.join(words)}); COMP_CWORD={len(words)}\n"
        "_profiler_completion profiler\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "--norc", "-c", script], env=environment(), capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout.split()


def test_bash_completes_a_command_name() -> None:
    assert bash_completions("li") == ["lint"]
    assert {"check", "diff", "explain", "generate", "lint", "record", "schema", "show"} <= set(bash_completions(""))


def test_bash_completes_an_option_and_its_choices() -> None:
    assert bash_completions("check", "--form") == ["--format"]
    assert bash_completions("check", "--format", "") == ["text", "markdown", "json", "sarif"]
