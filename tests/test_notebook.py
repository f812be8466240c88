"""notebooks/syscall-usage.ipynb runs top to bottom on the committed traces, draws every figure, and is committed
without outputs."""

import json
import sys
from pathlib import Path

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
