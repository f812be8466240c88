"""notebooks/syscall-usage.ipynb runs top to bottom on the committed traces, draws every figure, and is committed
without outputs; it shows the traces PROFILER_TRACES names; `make notebook` opens it in JupyterLab."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK = REPOSITORY / "notebooks" / "syscall-usage.ipynb"
FIGURES = 6  # syscalls per component and program, heatmap, learning curve, first use, capabilities, process trees


@pytest.fixture
def this_python_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel running this interpreter, found ahead of any other: a `python3` kernel installed for the user
    or the system could run another Python, one without profiler."""
    spec = tmp_path / "kernels" / "profiler-tests"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "profiler tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    # On a fresh machine matplotlib builds its font cache on first import, and may say so on stderr: here, not
    # in a notebook cell, where stderr fails the test.
    import matplotlib.font_manager  # noqa: F401

    return "profiler-tests"


def test_the_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_notebook_runs_on_the_committed_traces(this_python_kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROFILER_TRACES", raising=False)  # the committed traces, whatever the caller's shell says
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name=this_python_kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert [output.text for output in outputs if output.output_type == "stream" and output.name == "stderr"] == []
    assert sum("image/png" in output.get("data", {}) for output in outputs) == FIGURES
    traces = len(list((REPOSITORY / "traces").glob("*.trace.json")))
    assert f"{traces} traces from {REPOSITORY / 'traces'}\n" in [
        output.text for output in outputs if output.output_type == "stream"
    ]


def test_the_notebook_shows_the_traces_profiler_traces_names(
    this_python_kernel: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A user's own traces, in a directory of theirs: the notebook reads those and no committed one."""
    mine = tmp_path / "my traces"
    mine.mkdir()
    for name in ("curl-fetch", "pip-install"):
        shutil.copy(REPOSITORY / "traces" / f"{name}.trace.json", mine)
    monkeypatch.setenv("PROFILER_TRACES", str(mine))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name=this_python_kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    streams = [output.text for cell in notebook.cells for output in cell.get("outputs", []) if "text" in output]
    assert f"2 traces from {mine}\n" in streams
    tables = " ".join(
        output["data"].get("text/plain", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "data" in output
    )
    assert "curl" in tables and "pip-install" in tables and "git-clone" not in tables


def test_make_notebook_opens_jupyterlab_on_the_notebooks_with_this_environment(tmp_path: Path) -> None:
    """The real `make notebook` (installing JupyterLab on first use), its server asked what it serves."""
    runtime = tmp_path / "runtime"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "PROFILER_TRACES": "traces",  # relative, as a user types it: made absolute for the kernel in notebooks/
    }
    args = "--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=0 --ServerApp.token=profiler-test"
    server = subprocess.Popen(
        ["make", "-s", "notebook", f"NOTEBOOK_ARGS={args}"],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        info = _server_info(runtime, server)

        def api(path: str) -> Any:
            request = urllib.request.Request(
                f"{info['url']}api/{path}", headers={"Authorization": "token profiler-test"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)

        assert "syscall-usage.ipynb" in {each["name"] for each in api("contents")["content"]}
        kernel = api("kernelspecs")["kernelspecs"]["python3"]["spec"]
        assert Path(kernel["argv"][0]).parent == Path(sys.executable).parent
        environ = Path(f"/proc/{info['pid']}/environ").read_bytes().split(b"\0")
        assert f"PROFILER_TRACES={REPOSITORY / 'traces'}".encode() in environ
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _server_info(runtime: Path, server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The server's own record of where it listens, once it has written one (installing may come first)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for path in runtime.glob("jpserver-*.json"):
            with contextlib.suppress(ValueError):
                info: dict[str, Any] = json.loads(path.read_text())
                return info
        assert server.poll() is None, f"make notebook exited with {server.returncode}"
        time.sleep(0.5)
    raise AssertionError("jupyter lab wrote no server file in 10 minutes")
