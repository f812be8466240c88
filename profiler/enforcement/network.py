"""The private network of PrivateNetwork=: a new network namespace whose only interface, loopback, is up."""

from profiler.errors import EnforcementError


def bring_up_loopback() -> None:
    """In the new network namespace: set lo up (the kernel creates it down, with 127.0.0.1/8 and ::1 once up)."""
    from pyroute2 import IPRoute  # netlink; imported on use, as only private networks need it

    with IPRoute() as route:
        links = route.link_lookup(ifname="lo")
        if not links:
            raise EnforcementError("the new network namespace has no loopback interface")
        route.link("set", index=links[0], state="up")
        if route.get_links(links[0])[0].get("state") != "up":
            raise EnforcementError("loopback did not come up in the new network namespace")
