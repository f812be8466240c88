"""The OCI/Docker seccomp JSON format: rendered with its evidence, read back as a Policy, corrected.

    OciFormat.render          the JSON that docker, podman, containerd, CRI-O and runc load
    OciFormat.read / .parse   a deployed OCI profile as a Policy, with lint findings
    OciFormat.correct         the rules that make a profile allow what it misses

(The spec, the reading and the JSON tokenizer are the modules next to this one, shared with k8s.)
"""

import json
from pathlib import Path

from generators.comparison import Comparison
from generators.correction import Correction, Corrector
from generators.interface import (
    LintFinding,
    Policy,
    PolicyFormat,
    PolicyReader,
    Renderer,
    RenderOptions,
)
from generators.profile import Profile
from generators.seccomp.correction import granted_capabilities, seccomp_changes
from generators.seccomp.json_lines import JsonLines, decode_json, json_value_lines, render_path
from generators.seccomp.reader import read_seccomp_spec
from generators.seccomp.reading import IncludeContext
from generators.seccomp.spec import ALLOW, ArgCondition, SeccompRule, SeccompSpec, seccomp_spec
from profiler.errors import PolicyParseError
from profiler.escaping import json_dumps
from profiler.files import read_input


class OciFormat(Renderer, PolicyReader, Corrector):
    """OCI/Docker seccomp JSON. Reading evaluates Docker's includes/excludes in `context` (default: Docker's
    default capabilities on this host's ABI and kernel)."""

    format = PolicyFormat.OCI

    def __init__(self, context: IncludeContext | None = None):
        self.context = context

    def render(self, profile: Profile, options: RenderOptions) -> str:
        return render_seccomp_json(seccomp_spec(profile, options), options.comments)

    def read(self, path: Path) -> Policy:
        return self.parse(read_input(path, "policy", PolicyParseError), str(path))

    def parse(self, text: str | bytes, source: str) -> Policy:
        """Read an OCI seccomp profile from its text; source names it in findings and errors."""
        document = decode_json(text, source, "an OCI seccomp profile")
        try:
            located = json_value_lines(text.decode() if isinstance(text, bytes) else text)
        except RecursionError:
            located = JsonLines({}, ())
        reading = read_seccomp_spec(document, source=source, lines=located.lines, context=self.context)
        repeated = [
            LintFinding(
                source, line, f"{render_path(path)} is given twice: runtimes keep the later value", "duplicate-key"
            )
            for path, line in located.repeated
        ]
        return reading.policy(source, PolicyFormat.OCI, repeated)

    def correct(self, comparison: Comparison) -> Correction:
        rules, notes = seccomp_changes(comparison)
        capabilities = granted_capabilities(comparison)
        if capabilities:
            notes.append(
                f"grant {', '.join(capabilities)} in the container's capabilities "
                f"(docker run {' '.join(f'--cap-add={name}' for name in capabilities)})"
            )
        text = ",\n".join(json.dumps(rule) for rule in rules)
        return Correction(
            how=f'Add to the "syscalls" array of {comparison.policy.source}:' if rules else "Change the profile:",
            text=text + "\n" if text else "",
            language="json",
            notes=tuple(notes),
        )


def render_seccomp_json(spec: SeccompSpec, comments: bool) -> str:
    """The profile as JSON, one rule per line; without comments, the unconditional allow rules as one."""
    rules = list(spec.rules)
    if not comments:
        plain = [rule for rule in rules if rule.action == ALLOW and not rule.args]
        merged = SeccompRule(tuple(sorted(name for rule in plain for name in rule.names)), ALLOW)
        rules = ([merged] if plain else []) + [rule for rule in rules if rule not in plain]
    fields = [
        ("defaultAction", json_dumps(spec.default_action)),
        ("defaultErrnoRet", json_dumps(spec.default_errno_ret)),
        ("architectures", json_dumps(list(spec.architectures))),
        ("syscalls", _json_list([_json_rule(rule, comments) for rule in rules])),
    ]
    if comments and spec.notes:
        fields.insert(0, ("comment", _json_list([json_dumps(note) for note in spec.notes])))
    return "{\n" + ",\n".join(f'  "{key}": {value}' for key, value in fields) + "\n}\n"


def _json_list(items: list[str]) -> str:
    return "[" + ",".join(f"\n    {item}" for item in items) + "\n  ]" if items else "[]"


def _json_rule(rule: SeccompRule, comments: bool) -> str:
    data: dict[str, object] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        data["errnoRet"] = rule.errno_ret
    if rule.args:
        data["args"] = [_json_condition(condition) for condition in rule.args]
    if comments and rule.comment:
        data["comment"] = rule.comment
    return json_dumps(data, separators=(", ", ": "))


def _json_condition(condition: ArgCondition) -> dict[str, object]:
    data: dict[str, object] = {"index": condition.index, "value": condition.value}
    if condition.value_two:
        data["valueTwo"] = condition.value_two
    data["op"] = condition.op
    return data
