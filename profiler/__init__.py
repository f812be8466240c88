"""profiler: learn the syscalls, capabilities and socket families a component really uses."""

__version__ = "0.1.0"
