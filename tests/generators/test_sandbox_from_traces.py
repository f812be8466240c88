"""From the trace's file_accesses and kernel_uses tables to the sandbox a profile allows: merged across runs as the
other tables are, left out unless every run recorded them, and through `generate` to the drop-in's settings."""

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from generators.profile import Evidence, FileNeed, KernelNeed, build_profile
from profiler.cli import main
from profiler.trace import FileAccess, FileOp, KernelUse, Trace
from tests.generators.sandbox_builders import recorded

CommittedTrace = Callable[[str], tuple[str, Trace]]
CURL = "/usr/bin/curl"
CA = "/etc/ssl/certs/ca-certificates.crt"


def _curl(committed_trace: CommittedTrace, started_at: str, **tables: object) -> tuple[str, Trace]:
    source, trace = committed_trace("curl-fetch")
    trace = dataclasses.replace(trace, run=dataclasses.replace(trace.run, started_at=started_at))
    return f"{source}@{started_at}", recorded(trace, **tables)  # type: ignore[arg-type]


def test_the_sandbox_merges_the_runs_evidence_as_the_other_tables_do(committed_trace: CommittedTrace) -> None:
    first = _curl(
        committed_trace,
        "2026-11-29T00:00:00Z",
        accesses=[(CA, FileOp.READ), ("/root/.curlrc", FileOp.READ, "ENOENT")],
        kernel=[(KernelUse.NETWORK, "connect 151.101.0.223:443")],
        dropped_paths=2,
    )
    second = _curl(
        committed_trace,
        "2026-11-30T00:00:00Z",
        accesses=[(CA, FileOp.READ), ("/var/cache/curl/out", FileOp.CREATE)],
        kernel=[(KernelUse.NETWORK, "connect 151.101.0.223:443"), (KernelUse.LOOPBACK, "connect 127.0.0.1:8080")],
        unresolved_paths=3,
    )
    source, trace = second
    assert trace.file_accesses is not None
    timed = trace.file_accesses[0]._replace(count=4, first_s=0.25)
    device = FileAccess(trace.processes[0].id, 0, "/dev/null", FileOp.WRITE, None, (1, 3), 1, 0.5)
    second = source, dataclasses.replace(trace, file_accesses=(timed, *trace.file_accesses[1:], device))
    source, trace = first
    assert trace.file_accesses is not None
    again = FileAccess(trace.processes[0].id, 0, CA, FileOp.READ, None, None, 2, 0.1)  # the same, in the same run
    first = source, dataclasses.replace(trace, file_accesses=(*trace.file_accesses, again))
    for traces in itertools.permutations([first, second]):
        sandbox = build_profile(list(traces)).sandbox
        assert sandbox is not None
        assert sandbox.files == (
            FileNeed("/dev/null", FileOp.WRITE, None, Evidence((1,), 1, (CURL,), 0.5), (1, 3)),
            FileNeed(CA, FileOp.READ, None, Evidence((0, 1), 7, (CURL,), 0.1)),
            FileNeed("/root/.curlrc", FileOp.READ, "ENOENT", Evidence((0,), 1, (CURL,), None)),
            FileNeed("/var/cache/curl/out", FileOp.CREATE, None, Evidence((1,), 1, (CURL,), None)),
        )
        assert sandbox.kernel == (
            KernelNeed(KernelUse.LOOPBACK, "connect 127.0.0.1:8080", Evidence((1,), 1, (CURL,), None)),
            KernelNeed(KernelUse.NETWORK, "connect 151.101.0.223:443", Evidence((0, 1), 2, (CURL,), None)),
        )
        assert (sandbox.dropped_paths, sandbox.unresolved_paths) == (2, 3)


def test_a_run_that_did_not_record_paths_leaves_the_sandbox_unknown(committed_trace: CommittedTrace) -> None:
    with_paths = _curl(committed_trace, "2026-11-29T00:00:00Z", accesses=[(CA, FileOp.READ)])
    assert build_profile([with_paths]).sandbox is not None
    # curl-fetch as committed before the recorder recorded paths (trace schema 1).
    assert build_profile([committed_trace("curl-fetch-v1")]).sandbox is None
    assert build_profile([with_paths, committed_trace("curl-fetch-v1")]).sandbox is None


def test_recorded_but_nothing_seen_is_an_empty_sandbox_not_an_unknown_one(committed_trace: CommittedTrace) -> None:
    sandbox = build_profile([_curl(committed_trace, "2026-11-29T00:00:00Z", accesses=[])]).sandbox
    assert sandbox is not None and sandbox.files == () and sandbox.kernel == ()


def _generate(tmp_path: Path, trace: Trace) -> str:
    path = tmp_path / "curl.trace.json"
    trace.save(path, overwrite=True)
    result = CliRunner().invoke(main, ["generate", "--format", "systemd", str(path)])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_trace_with_paths_gives_the_sandbox_settings_through_generate(
    tmp_path: Path, committed_trace: CommittedTrace
) -> None:
    accesses: list[tuple[str, FileOp] | tuple[str, FileOp, str]] = [
        (CA, FileOp.READ),
        ("/root/.curlrc", FileOp.READ, "ENOENT"),
        ("/srv/out", FileOp.CREATE),
        ("/srv/out", FileOp.WRITE),
        ("/dev/null", FileOp.WRITE),
    ]
    _, trace = _curl(committed_trace, "2026-11-29T00:00:00Z", accesses=accesses, kernel=[])
    lines = _generate(tmp_path, trace).splitlines()
    for line in (
        "ProtectSystem=strict",
        "ReadWritePaths=/srv",
        "ProtectHome=tmpfs",
        "PrivateDevices=yes",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "MemoryDenyWriteExecute=yes",
        "PrivateNetwork=yes",
    ):
        assert line in lines, line
    # What a run did rules a setting out, and the comment says what.
    _, home = _curl(committed_trace, "2026-11-29T00:00:00Z", accesses=[*accesses, ("/root/.curlrc", FileOp.WRITE)])
    lines = _generate(tmp_path, home).splitlines()
    assert not any(line.startswith("ProtectHome=") for line in lines)
    assert any(line.startswith("# ProtectHome= left open:") and "/root/.curlrc" in line for line in lines)
    _, online = _curl(
        committed_trace, "2026-11-29T00:00:00Z", accesses=accesses, kernel=[(KernelUse.NETWORK, "connect 1.1.1.1:443")]
    )
    assert "PrivateNetwork=yes" not in _generate(tmp_path, online).splitlines()


def test_a_trace_without_paths_generates_what_it_did_before(tmp_path: Path, committed_trace: CommittedTrace) -> None:
    _, trace = committed_trace("curl-fetch-v1")
    text = _generate(tmp_path, trace)
    assert "ProtectSystem=" not in text and "ReadWritePaths=" not in text
