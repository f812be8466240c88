"""The systemd family: drop-ins rendered from profiles, and deployed units read as systemd 252 reads them.

format       SystemdFormat, behind generators.interface: what generators.formats returns for systemd
render       the [Service] drop-in of a profile
reader       a unit with its drop-ins, read: unit_syntax (the file), settings (what each line means), lint
names        systemd's names and tables: architectures, families, capabilities, errnos, setting names
groups       systemd's syscall groups (@system-service), from the installed systemd or the committed table
dropins      where systemd finds a unit's drop-ins, and which files override the unit
correction   the drop-in that makes a unit allow what it misses
sandbox      the settings `profiler run` applies beside the Policy: Group=, Private*=, Protect*=, ReadWritePaths=
"""
