"""The names a policy holds: what a renderer writes as a syscall, capability, family, namespace type or ABI is one.

Loading a trace refuses names that are not in the kernel's and libseccomp's tables; a renderer checks again,
by form, before it writes anything, so that a profile built some other way (in a notebook, from a JSON profile)
cannot put a newline, a quote or a `$(...)` where a policy expects a name: it is refused, not written.
Free text (paths, argv, host and user names) goes only into comments, escaped by each format.
"""

import re

from generators.profile import ANY_NAMESPACE, NAMESPACE_TYPES, Profile
from profiler.errors import NotANameError
from profiler.escaping import visible

# libseccomp's syscall and ABI names are lower case (_llseek, x86_64); capabilities and families are the
# kernel's, or CAP_<number> and AF_<number> for numbers newer than profiler's tables (AF_DECnet has lower case).
_FORMS: dict[str, re.Pattern[str]] = {
    "syscall": re.compile(r"[a-z_][a-z0-9_]*"),
    "capability": re.compile(r"CAP_[A-Z0-9_]+"),
    "address family": re.compile(r"AF_[A-Za-z0-9_]+"),
    "namespace type": re.compile("|".join([*NAMESPACE_TYPES.values(), ANY_NAMESPACE])),
    "ABI": re.compile(r"[a-z][a-z0-9_]*"),
}


def policy_name(kind: str, name: str, component: str) -> str:
    """The name, when it is one of its kind; NotANameError otherwise."""
    if not _FORMS[kind].fullmatch(name):
        raise NotANameError(
            f"the profile of {visible(component)} holds the {kind} '{visible(name)}', which is not a {kind} name, "
            "so no policy can hold it: give traces that profiler record wrote"
        )
    return name


def check_profile_names(profile: Profile) -> None:
    """Every name a policy of the profile would hold is a name (NotANameError for the first that is not)."""
    named = [
        ("ABI", [profile.native_abi, *(abi for need in profile.syscalls for abi in need.abis)]),
        ("syscall", [need.name for need in profile.syscalls]),
        ("capability", [use.name for use in profile.capabilities]),
        ("address family", [use.name for use in profile.families]),
        ("namespace type", [need.name for need in profile.namespaces]),
    ]
    for kind, names in named:
        for name in names:
            policy_name(kind, name, profile.component)
