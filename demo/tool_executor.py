"""A small tool executor, like the component that runs `cargo audit` for an orchestrator: it reads its
inputs, runs a child tool, and reports to a collector over a loopback socket. `make demo` records it."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading


def serve_once(server: socket.socket, received: list[bytes]) -> None:
    connection, _ = server.accept()
    with connection:
        received.append(connection.recv(65536))


def main() -> int:
    # Read the inputs: a manifest the tool would audit.
    with open("/etc/os-release", encoding="utf-8") as manifest:
        fields = dict(line.rstrip("\n").split("=", 1) for line in manifest if "=" in line)

    # Run the tool as a child process and capture its output.
    with tempfile.TemporaryDirectory() as workdir:
        listing = subprocess.run(["ls", "-l", "/usr/bin"], capture_output=True, text=True, cwd=workdir, check=True)
        tools = len(listing.stdout.splitlines())

    # Report to the collector over loopback.
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        collector = threading.Thread(target=serve_once, args=(server, received))
        collector.start()
        report = json.dumps({"os": fields.get("ID"), "tools": tools, "pid": os.getpid()}).encode()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(report)
        collector.join()
    print(f"tool-executor: audited {tools} entries of /usr/bin on {fields.get('PRETTY_NAME', '?')}")
    return 0 if received == [report] else 1


if __name__ == "__main__":
    sys.exit(main())
