"""The json format: the profile itself with all its evidence, and what a policy made from it allows, for other tools.

    JsonProfileFormat.render   {"schema": "profiler-profile", "schema_version": 1, "options", "policy", "profile"}
    parse_profile / load_profile   the profile back from that file (TraceFormatError, one line, when it is not one)

"profile" is generators.profile.Profile as pydantic dumps it: every syscall, capability path, family and
namespace type with its evidence (runs, as indexes into "runs", count, programs, first use). A run's command
holds only its program unless options.command_lines says it is whole (arguments can hold secrets, and
profiles get committed). Strings are exact: JSON escapes them (profiler.escaping.json_dumps). "policy" is what
the other formats derive from it under the options given, so that tools need not redo it: the syscall plan
(allowed, added though unseen, and why; refused with ENOSYS), the capability bounding set, the denied
capabilities and the items seen in fewer than min_runs runs.
"""

import dataclasses
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from generators.interface import PolicyFormat, Renderer, RenderOptions
from generators.policy_names import check_profile_names
from generators.profile import Profile
from generators.syscall_plan import plan_syscalls
from profiler.column_kinds import shown
from profiler.errors import TraceFormatError
from profiler.escaping import json_dumps
from profiler.files import read_input
from profiler.trace import PATH_COUNTERS, error_location, is_normal_path

if TYPE_CHECKING:
    from pydantic import TypeAdapter

SCHEMA_NAME: Final = "profiler-profile"
SCHEMA_VERSION: Final = 1


@functools.cache
def _adapter() -> "TypeAdapter[Profile]":
    # pydantic takes 0.1-0.2 s to import: only for reading a profile, not for `diff OLD NEW` of two traces,
    # which imports this module for SCHEMA_NAME.
    from pydantic import TypeAdapter

    return TypeAdapter(Profile)


def _policy(profile: Profile, options: RenderOptions) -> dict[str, Any]:
    plan = plan_syscalls(profile, options.portability)

    def uncertain(items: Any) -> list[str]:
        return [item.name for item in items if profile.is_uncertain(item.evidence, options.min_runs)]

    return {
        "syscalls": {
            "allowed": list(plan.allowed),
            "added": [{"name": name, "why": why} for name, why in plan.added],
            "enosys": list(plan.enosys),
        },
        "capability_bounding_set": list(profile.bounding_set()),
        "denied_capabilities": list(profile.denied_capabilities()),
        "capabilities_known": profile.capabilities_known,
        "recorded_unprivileged": profile.recorded_unprivileged,
        "uses_io_uring": profile.uses_io_uring,
        "uncertain": {
            "syscalls": uncertain(profile.syscalls),
            "capabilities": uncertain(profile.capabilities),
            "families": uncertain(profile.families),
            "namespaces": uncertain(profile.namespaces),
        },
    }


class JsonProfileFormat(Renderer):
    format = PolicyFormat.JSON

    def render(self, profile: Profile, options: RenderOptions) -> str:
        check_profile_names(profile)
        if not options.command_lines:
            runs = tuple(dataclasses.replace(run, command=run.command[:1]) for run in profile.runs)
            profile = dataclasses.replace(profile, runs=runs)
        document = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "options": {
                "portability": options.portability,
                "min_runs": options.min_runs,
                "command_lines": options.command_lines,
            },
            "policy": _policy(profile, options),
            "profile": _dumped(profile),
        }
        return _layout(document, "") + "\n"


def _dumped(profile: Profile) -> Any:
    """The profile as JSON values; without "sandbox" and the zero counters of its tables where the traces did not
    record it, as profiles were written before they could."""
    dumped = _adapter().dump_python(profile, mode="json")
    if profile.sandbox is None:
        del dumped["sandbox"]
        for counter in PATH_COUNTERS:
            if not dumped["dropped"][counter]:
                del dumped["dropped"][counter]
    return dumped


def _inline(value: object) -> str:
    return json_dumps(value, separators=(", ", ": "))


def _layout(value: object, indent: str) -> str:
    """JSON that reads and diffs well: an object per line in a list of objects, short objects on one line."""
    inner = indent + "  "
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "[\n" + ",\n".join(inner + _inline(item) for item in value) + "\n" + indent + "]"
    if isinstance(value, dict) and len(_inline(value)) + len(indent) > 100:
        members = [f"{inner}{json_dumps(key)}: {_layout(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + indent + "}"
    return _inline(value)


def _first_difference(expected: object, given: object, path: str = "profile") -> str:
    """Where a value read back differs from the one given: a key this version does not know, or a bad value."""
    if isinstance(expected, dict) and isinstance(given, dict):
        for key in sorted(set(expected) | set(given)):
            if key not in expected:
                return f"{path}.{key} is not a field of this version"
            if key not in given or expected[key] != given[key]:
                return _first_difference(expected[key], given.get(key), f"{path}.{key}")
    if isinstance(expected, list) and isinstance(given, list) and len(expected) == len(given):
        for index, (each_expected, each_given) in enumerate(zip(expected, given, strict=True)):
            if each_expected != each_given:
                return _first_difference(each_expected, each_given, f"{path}[{index}]")
    return f"{path} is {given!r}, which reads back as {expected!r}"


def parse_profile(text: str | bytes, source: str) -> Profile:
    """The profile of a file written by JsonProfileFormat; source names it in errors."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TraceFormatError(
            f"{source}: not a profiler profile (not JSON text); give a file of --format json"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise TraceFormatError(f'{source}: not a profiler profile (no "schema": "{SCHEMA_NAME}")')
    if data.get("schema_version") != SCHEMA_VERSION:
        raise TraceFormatError(
            f"{source}: profile schema_version {data.get('schema_version')!r}; this profiler reads {SCHEMA_VERSION}"
        )
    from pydantic import ValidationError

    try:
        # From the decoded value, not its JSON: pydantic's JSON parser refuses the lone surrogates (\udcXX) that
        # stand for bytes of a path that were not UTF-8.
        profile = _adapter().validate_python(data.get("profile"), strict=False)
    except ValidationError as error:
        first = error.errors()[0]
        raise TraceFormatError(
            f"{source}: invalid profile at {error_location(('profile', *first['loc']))}: {first['msg']}"
        ) from None
    # The sandbox settings' prefix checks (a path under a directory is under it as text) rest on what a trace's
    # validation vouches for: a relative or empty path made the systemd renderer look for a directory above it
    # that a unit line can hold, for ever.
    files = profile.sandbox.files if profile.sandbox is not None else ()
    wrong = next((index for index, need in enumerate(files) if not is_normal_path(need.path)), None)
    if wrong is not None:
        raise TraceFormatError(
            f"{source}: invalid profile at profile.sandbox.files[{wrong}].path: {shown(files[wrong].path)} is not "
            "an absolute, normalised path"
        )
    written = _dumped(profile)
    if written != data["profile"]:
        raise TraceFormatError(
            f"{source}: not a profile this profiler writes: {_first_difference(written, data['profile'])}"
        )
    return profile


def load_profile(path: Path | str) -> Profile:
    """Read a profile file; any problem is one TraceFormatError line."""
    path = Path(path)
    return parse_profile(read_input(path, "profile"), str(path))
