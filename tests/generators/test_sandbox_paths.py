"""The writable paths ProtectSystem=strict leaves: every write covered, nothing outside a written directory opened."""

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generators.profile import ENTRY_OPS, INODE_OPS, Evidence, FileNeed
from generators.sandbox import API_TREES, TEMPORARY_TREES, WritableRoot, is_under, writable_roots
from profiler.trace import FileOp

EVIDENCE = Evidence((0,), 1, ("/usr/bin/app",), None)
_TOPS = ("/etc", "/srv/app", "/var/lib", "/var/cache", "/var/log", "/run", "/tmp", "/proc/sys", "/root", "/")
paths = st.builds(
    lambda top, rest: posixpath.join(top, *rest),
    st.sampled_from(_TOPS),
    st.lists(st.sampled_from(("app", "db", "x.log", "sub")), min_size=1, max_size=3),
)
needs = st.lists(
    st.builds(
        FileNeed,
        paths,
        st.sampled_from(list(FileOp)),
        st.sampled_from((None, None, None, "ENOENT", "EACCES")),
        st.just(EVIDENCE),
    ),
    max_size=25,
)


def _need(path: str, op: FileOp, error: str | None = None) -> FileNeed:
    return FileNeed(path, op, error, EVIDENCE)


def _unit(need: FileNeed) -> str:
    return posixpath.dirname(need.path) if need.op in ENTRY_OPS else need.path


def _skipped(need: FileNeed, private_tmp: bool) -> bool:
    trees = API_TREES + (TEMPORARY_TREES if private_tmp else ())
    return any(is_under(need.path, tree) for tree in trees)


@given(needs, st.booleans())
def test_every_successful_write_is_covered_by_the_root_that_lists_it(files: list[FileNeed], private_tmp: bool) -> None:
    roots = writable_roots(files, private_tmp)
    listed = [write for root in roots for write in root.writes]
    for need in files:
        wanted = need.error is None and need.op in ENTRY_OPS | INODE_OPS and not _skipped(need, private_tmp)
        assert listed.count(need) == (files.count(need) if wanted else 0)
    for root in roots:
        for write in root.writes:
            # systemd makes a managed directory: a write under it is covered, its own creation included.
            covered = write.path if root.setting != "ReadWritePaths" else _unit(write)
            assert is_under(covered, root.path) if root.directory else covered == root.path


@given(needs, st.booleans())
def test_nothing_outside_a_written_directory_is_opened_up(files: list[FileNeed], private_tmp: bool) -> None:
    """A directory left writable is one whose entries a run changed (or that systemd makes for the service);
    a file left writable is one a run wrote; none lies under another."""
    roots = writable_roots(files, private_tmp)
    succeeded = [need for need in files if need.error is None]
    made = {need.path for need in succeeded if need.op is FileOp.CREATE}
    for root in roots:
        if root.setting != "ReadWritePaths":
            # Only a directory the runs made is systemd's to make and chown: not one that was there before.
            assert root.path in made
            assert all(is_under(write.path, root.path) for write in root.writes)
        elif root.directory:
            assert any(need.op in ENTRY_OPS and posixpath.dirname(need.path) == root.path for need in succeeded)
        else:
            assert any(need.op in INODE_OPS and need.path == root.path for need in succeeded)
        assert not any(other.directory and other is not root and is_under(root.path, other.path) for other in roots)


@given(needs, st.booleans(), st.randoms())
def test_the_roots_do_not_depend_on_the_order_of_the_observations(
    files: list[FileNeed], private_tmp: bool, random: "st.SearchStrategy[object]"
) -> None:
    shuffled = list(files)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert [_key(root) for root in writable_roots(shuffled, private_tmp)] == [
        _key(root) for root in writable_roots(files, private_tmp)
    ]


def _key(root: WritableRoot) -> tuple[str, str, bool, frozenset[FileNeed]]:
    return root.setting, root.path, root.directory, frozenset(root.writes)


def test_a_cache_a_log_a_file_and_a_private_tmp() -> None:
    roots = writable_roots(
        [
            _need("/var/cache/app", FileOp.CREATE),  # made by the run: the service's own, systemd's to make
            _need("/var/cache/app/index", FileOp.CREATE),
            _need("/var/cache/app/index", FileOp.WRITE),
            _need("/var/lib/dpkg/status", FileOp.WRITE),  # there before: another's, which systemd would chown
            _need("/var/log/app.log", FileOp.WRITE),  # a file directly in /var/log: that file only
            _need("/etc/app/state.json", FileOp.RENAME),  # a rename into place changes /etc/app's entries
            _need("/tmp/tmpq8x/out", FileOp.CREATE),
            _need("/home/user/.config", FileOp.CREATE, "EACCES"),  # refused: a probe, nothing to open
            _need("/proc/self/oom_score_adj", FileOp.WRITE),  # the API trees have settings of their own
        ],
        private_tmp=True,
    )
    assert [(root.setting, root.value, root.directory) for root in roots] == [
        ("CacheDirectory", "app", True),
        ("ReadWritePaths", "/etc/app", True),
        ("ReadWritePaths", "/var/lib/dpkg/status", False),
        ("ReadWritePaths", "/var/log/app.log", False),
    ]


@pytest.mark.parametrize(("tree", "setting"), [("/var/lib", "StateDirectory"), ("/run", "RuntimeDirectory")])
def test_a_managed_tree_s_directory_is_the_service_s_own_only_where_the_runs_made_it(tree: str, setting: str) -> None:
    """systemd chowns a StateDirectory= that is there, and all in it, to the service's user: one the runs found
    there (/var/lib/dpkg, /run/lock) is a ReadWritePaths= path that says which line it is not, and why."""
    found = [_need(f"{tree}/shared/entry", FileOp.CREATE), _need(f"{tree}/shared/sub", FileOp.CREATE)]
    found.append(_need(f"{tree}/shared/sub/x", FileOp.CREATE))  # made below it: still not the service's own
    assert [(root.setting, root.path, root.not_managed) for root in writable_roots(found, True)] == [
        ("ReadWritePaths", f"{tree}/shared", (f"{setting}=shared", f"{tree}/shared"))
    ]
    failed = [_need(f"{tree}/shared", FileOp.CREATE, "EEXIST"), *found]  # mkdir -p of one that is there
    assert [root.setting for root in writable_roots(failed, True)] == ["ReadWritePaths"]
    made = [_need(f"{tree}/own", FileOp.CREATE), _need(f"{tree}/own/entry", FileOp.CREATE)]
    assert [(root.setting, root.value, root.not_managed) for root in writable_roots(made, True)] == [
        (setting, "own", None)
    ]


def test_a_directory_the_runs_created_is_named_by_the_nearest_one_that_exists_before() -> None:
    """/srv/app/run-7 is made by the run and gone at the next start: systemd would refuse to start the unit
    with it in ReadWritePaths=; /srv/app, whose entries the run changed by making it, is what it needs."""
    roots = writable_roots(
        [_need("/srv/app/run-7", FileOp.CREATE), _need("/srv/app/run-7/result", FileOp.CREATE)], private_tmp=True
    )
    assert [(root.value, len(root.writes)) for root in roots] == [("/srv/app", 2)]


def test_without_a_private_tmp_its_writes_need_tmp_itself() -> None:
    roots = writable_roots([_need("/tmp/tmpq8x", FileOp.CREATE), _need("/tmp/tmpq8x/a", FileOp.CREATE)], False)
    assert [root.value for root in roots] == ["/tmp"]
