"""Prints what the network looks like from inside (links, IPv4 routes) and what it reaches, as JSON."""

import json
import socket
import sys

from pyroute2 import IPRoute

MAIN_TABLE, LOCAL_TABLE = 254, 255


def reaches(address: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        try:
            client.connect((address, port))
        except OSError as error:
            return str(error.errno)
    return "connected"


with IPRoute() as route:
    names = {link["index"]: link.get("ifname") for link in route.get_links()}
    links = {link.get("ifname"): link.get("state") for link in route.get_links()}
    found = route.get_routes(family=socket.AF_INET, table=MAIN_TABLE) + route.get_routes(
        family=socket.AF_INET, table=LOCAL_TABLE
    )
    routes = sorted([each.get("dst") or "default", names[each.get("oif")]] for each in found)
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
    server.bind(("127.0.0.1", 0))
    server.listen()
    loopback = reaches("127.0.0.1", server.getsockname()[1])
json.dump({"links": links, "routes": routes, "loopback": loopback, "outside": reaches(sys.argv[1], 80)}, sys.stdout)
