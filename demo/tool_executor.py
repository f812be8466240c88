"""A small tool executor, like the component that runs `cargo audit` for an orchestrator: it reads its
settings and inputs, runs a child tool, caches what the tool found, and reports to a collector over a loopback
socket. `make demo` records it."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Where systemd's CacheDirectory=tool-executor puts the cache, and says so in $CACHE_DIRECTORY.
CACHE = "/var/cache/tool-executor"


def serve_once(server: socket.socket, received: list[bytes]) -> None:
    connection, _ = server.accept()
    with connection:
        received.append(connection.recv(65536))


def settings() -> dict[str, object]:
    """The user's settings, if there are any: a missing file means the defaults, an unreadable one is an error."""
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    try:
        with open(Path(home) / "tool-executor.json", encoding="utf-8") as file:
            return dict(json.load(file))
    except FileNotFoundError:
        return {}


def cache(name: str, text: str) -> None:
    """Keep the tool's output for the next run: written beside, then renamed over, the previous one."""
    directory = Path(os.environ.get("CACHE_DIRECTORY") or CACHE)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8") as file:
        file.write(text)
    os.replace(file.name, directory / name)


def main() -> int:
    options = settings()
    # Read the inputs: a manifest the tool would audit.
    with open("/etc/os-release", encoding="utf-8") as manifest:
        fields = dict(line.rstrip("\n").split("=", 1) for line in manifest if "=" in line)

    # Run the tool as a child process and capture its output.
    with tempfile.TemporaryDirectory() as workdir:
        listing = subprocess.run(["ls", "-l", "/usr/bin"], capture_output=True, text=True, cwd=workdir, check=True)
        tools = len(listing.stdout.splitlines())
    cache("usr-bin.listing", listing.stdout)

    # Report to the collector over loopback.
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        collector = threading.Thread(target=serve_once, args=(server, received))
        collector.start()
        report = json.dumps({"os": fields.get("ID"), "tools": tools, "pid": os.getpid(), **options}).encode()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(report)
        collector.join()
    print(f"tool-executor: audited {tools} entries of /usr/bin on {fields.get('PRETTY_NAME', '?')}")
    return 0 if received == [report] else 1


if __name__ == "__main__":
    sys.exit(main())
