"""Which setting makes a path read-only or hides it, as the mounts systemd makes for each setting do: the words a
refusal is named with. Pure logic: no root needed."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiler.enforcement.confinement import FileSystem, ProtectHome, ProtectSystem
from profiler.enforcement.mounts import hidden_by, read_only_by


@pytest.fixture(autouse=True)
def as_root() -> None:
    """These read no system state: they run as any user (the directory's fixture of this name skips)."""


STRICT = FileSystem(protect_system=ProtectSystem.STRICT, read_write_paths=("/var/lib/app",))


@pytest.mark.parametrize(
    ("settings", "path", "setting"),
    [
        (FileSystem(protect_system=ProtectSystem.YES), "/usr/bin/x", "ProtectSystem=yes"),
        (FileSystem(protect_system=ProtectSystem.YES), "/etc/x", None),
        (FileSystem(protect_system=ProtectSystem.FULL), "/etc/x", "ProtectSystem=full"),
        (STRICT, "/etc/x", "ProtectSystem=strict"),
        (STRICT, "/var/lib/app/state", None),
        (STRICT, "/var/lib/application", "ProtectSystem=strict"),  # a prefix of the name is not the directory
        (STRICT, "/proc/sys/kernel/x", None),  # the API file systems stay as they are
        (STRICT, "relative/x", "ProtectSystem=strict"),
        (FileSystem(protect_system=ProtectSystem.STRICT, private_tmp=True), "/tmp/x", None),
        (FileSystem(protect_home=ProtectHome.READ_ONLY), "/home/u/x", "ProtectHome=read-only"),
        (FileSystem(protect_home=ProtectHome.READ_ONLY), "/srv/x", None),
        (FileSystem(), "/usr/bin/x", None),
    ],
)
def test_read_only_by(settings: FileSystem, path: str, setting: str | None) -> None:
    assert read_only_by(settings, path) == setting


@pytest.mark.parametrize(
    ("settings", "path", "setting"),
    [
        (FileSystem(protect_home=ProtectHome.YES), "/root/.bashrc", "ProtectHome=yes"),
        (FileSystem(protect_home=ProtectHome.TMPFS), "/home/u", "ProtectHome=tmpfs"),
        (FileSystem(protect_home=ProtectHome.READ_ONLY), "/home/u", None),  # there, read-only
        (FileSystem(private_devices=True), "/dev/vda", "PrivateDevices=yes"),
        (FileSystem(private_devices=True), "/dev/null", None),  # one of the pseudo devices it keeps
        (FileSystem(private_devices=True), "/dev/pts/0", None),
        (FileSystem(private_tmp=True), "/var/tmp/x", "PrivateTmp=yes"),
        (FileSystem(private_tmp=True), "/tmp", None),  # the directory itself is there, a new one
        (FileSystem(), "/dev/vda", None),
    ],
)
def test_hidden_by(settings: FileSystem, path: str, setting: str | None) -> None:
    assert hidden_by(settings, path) == setting


@given(st.lists(st.text(alphabet="abc/", min_size=1, max_size=8), max_size=3), st.text(alphabet="abc/", max_size=8))
def test_a_path_under_a_read_write_path_is_never_read_only(writable: list[str], below: str) -> None:
    roots = tuple("/" + each.strip("/") for each in writable if each.strip("/"))
    settings = FileSystem(protect_system=ProtectSystem.STRICT, read_write_paths=roots)
    for root in roots:
        assert read_only_by(settings, f"{root}/{below}".rstrip("/")) is None
