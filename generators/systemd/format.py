"""The systemd format: a [Service] drop-in from a profile, and deployed units read the way systemd 252 reads them.

SystemdFormat.render(profile, options)  the drop-in (generators.systemd.render)
SystemdFormat.read(path)                a unit file with its drop-ins (generators.systemd.dropins), or one drop-in
                                        file, read with systemd's rules (reader, unit_syntax, settings), and lint
                                        findings, with file and line, for what systemd ignores or reads
                                        differently from how it looks (lint)
SystemdFormat.correct(comparison)       the drop-in that adds what a unit misses (correction)
"""

from pathlib import Path

from generators.comparison import Comparison
from generators.correction import Correction, Corrector
from generators.interface import Policy, PolicyFormat, PolicyReader, Renderer, RenderOptions
from generators.profile import Profile
from generators.systemd.correction import systemd_correction
from generators.systemd.groups import SyscallGroups, syscall_groups
from generators.systemd.reader import read_systemd_unit
from generators.systemd.render import render_systemd_dropin


class SystemdFormat(Renderer, PolicyReader, Corrector):
    """Renders a profile as a drop-in and reads deployed units, both with one systemd version's syscall groups."""

    format = PolicyFormat.SYSTEMD

    def __init__(self, groups: SyscallGroups | None = None) -> None:
        self._groups = groups

    @property
    def groups(self) -> SyscallGroups:
        """The installed systemd's groups, else the committed table: unless the caller chose a table."""
        return self._groups or syscall_groups()

    def render(self, profile: Profile, options: RenderOptions) -> str:
        return render_systemd_dropin(profile, options, self.groups)

    def read(self, path: Path) -> Policy:
        return read_systemd_unit(path, self.groups)

    def correct(self, comparison: Comparison) -> Correction:
        return systemd_correction(comparison)
