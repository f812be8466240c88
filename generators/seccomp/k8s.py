"""The k8s format: a Security Profiles Operator SeccompProfile manifest, with the container securityContext to use it.

    KubernetesFormat.render   the SeccompProfile (security-profiles-operator.x-k8s.io/v1beta1) with a comment on
                              each syscall, then the securityContext block to paste into the container spec, as
                              comments so that `kubectl apply -f` takes the file as it is
    KubernetesFormat.read     the SeccompProfile of a manifest, read as the OCI profile SPO installs from it

The YAML is laid out by hand, so that every syscall carries its comment, but every string in it goes through
PyYAML's serializer (yaml_scalar), plain where YAML reads it back as that string and double-quoted with
escapes otherwise, and every comment is escaped visibly: no line break (LF, CR, NEL, U+2028) or other control
from a trace reaches the file, so nothing recorded can add a key or a rule. SPO's spec has no defaultErrnoRet
(the default errno is then EPERM, as the runtime-spec says) and no comment field, which the API server would
refuse.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from generators.comparison import Comparison
from generators.correction import Correction, Corrector
from generators.interface import (
    Policy,
    PolicyFormat,
    PolicyReader,
    Renderer,
    RenderOptions,
)
from generators.profile import Profile
from generators.seccomp.correction import granted_capabilities, seccomp_changes
from generators.seccomp.json_lines import JsonPath, policy_text
from generators.seccomp.privileges import SECCOMP_AND_NO_NEW_PRIVILEGES, ContainerPrivileges, container_privileges
from generators.seccomp.reader import read_seccomp_spec
from generators.seccomp.reading import Dialect, IncludeContext
from generators.seccomp.spec import ALLOW, EPERM, SeccompRule, SeccompSpec, seccomp_spec
from profiler.errors import PolicyParseError, RenderOptionError
from profiler.escaping import visible
from profiler.files import read_input

API_GROUP = "security-profiles-operator.x-k8s.io"
API_VERSION = f"{API_GROUP}/v1beta1"
KIND = "SeccompProfile"
# SPO installs a profile as <kubelet root>/seccomp/operator/<namespace>/<name>.json, which pods name relative
# to <kubelet root>/seccomp (api/seccompprofile/v1beta1: GetProfilePath, status.localhostProfile).
LOCALHOST_PREFIX = "operator"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# What may be written plain: a plain scalar of these characters, starting with a letter, holds no indicator,
# comment or line break; PyYAML's resolver then says whether it reads back as a string (yes and null do not),
# and y and n are booleans to go-yaml v2, which Kubernetes decodes with, though not to PyYAML.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_GO_YAML_BOOLEANS = frozenset({"y", "Y", "n", "N"})
_STRING_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()  # the one SafeLoader reads with
# Kubernetes stores no object over 1.5 MiB (etcd's request limit): a manifest is refused past this, before YAML
# (about 100 bytes of memory a byte once composed) is parsed.
MAX_MANIFEST_BYTES = 2 << 20
# What the reading of one document may cost once its aliases are expanded (go-yaml refuses such documents too).
MAX_EXPANDED_NODES = 1_000_000
_FLOW_BRACKETS = re.compile(r"[\[\]{}]")
_LIBYAML_SAFE_DEPTH = 5000


def yaml_scalar(value: str) -> str:
    """The string as one YAML scalar on one line: plain where YAML reads it back as this string, else quoted."""
    plain = _PLAIN.fullmatch(value) and value not in _GO_YAML_BOOLEANS
    if plain and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STRING_TAG:  # type: ignore[no-untyped-call]
        return value
    return yaml.safe_dump(value, default_style='"', allow_unicode=True, width=float("inf")).rstrip("\n")


def object_name(component: str) -> str:
    """A DNS-1123 subdomain for metadata.name made from the component name."""
    name = re.sub(r"[^a-z0-9.-]+", "-", component.lower()).strip("-.")[:253].strip("-.")
    return name or "profile"


class KubernetesFormat(Renderer, PolicyReader, Corrector):
    """SPO SeccompProfile manifests; reading takes the native ABI from `context` (default: this host's)."""

    format = PolicyFormat.K8S

    def __init__(self, context: IncludeContext | None = None):
        self.context = context

    def render(self, profile: Profile, options: RenderOptions) -> str:
        if options.namespace is not None and not _DNS_LABEL.fullmatch(options.namespace):
            raise RenderOptionError(
                f"{options.namespace!r} is not a Kubernetes namespace name (lowercase letters, digits and '-', "
                "at most 63)"
            )
        spec = seccomp_spec(profile, options)
        name = object_name(profile.component)
        lines: list[str] = []
        if options.comments:
            lines += [_comment(note) for note in spec.notes]
            lines.append(
                "# kubectl apply -f this file; the Security Profiles Operator installs it on every node for the "
                "pods that name it (see the securityContext at the end)"
            )
        lines += [f"apiVersion: {API_VERSION}", f"kind: {KIND}", "metadata:", f"  name: {yaml_scalar(name)}"]
        if options.namespace:
            lines.append(f"  namespace: {yaml_scalar(options.namespace)}")
        if options.base_profile is not None and not _DNS_SUBDOMAIN.fullmatch(options.base_profile):
            raise RenderOptionError(
                f"{options.base_profile!r} is not the name of a SeccompProfile (lowercase letters, digits, '-' and '.')"
            )
        lines += _spec_lines(spec, options.comments, options.base_profile)
        lines += _security_context(
            container_privileges(profile, options.min_runs), name, options.namespace, options.comments
        )
        return "\n".join(lines) + "\n"

    def correct(self, comparison: Comparison) -> Correction:
        rules, notes = seccomp_changes(comparison)
        lines: list[str] = []
        if rules:
            lines.append("# under spec.syscalls of the SeccompProfile")
        for rule in rules:
            lines.append(f"- action: {rule['action']}")
            names = rule["names"]
            assert isinstance(names, list)
            lines.append("  names:")
            lines += _yaml_list([str(name) for name in names], "  ")
            if "errnoRet" in rule:
                lines.append(f"  errnoRet: {rule['errnoRet']}")
            if "args" in rule:
                lines.append(f"  args: {json.dumps(rule['args'])}")
        capabilities = granted_capabilities(comparison)
        if capabilities:
            # Kubernetes names capabilities without the CAP_ prefix.
            lines += ["# in the container's securityContext", "capabilities:", "  add:"]
            lines += _yaml_list([name.removeprefix("CAP_") for name in capabilities], "  ")
        return Correction(
            how=f"Add to {comparison.policy.source}:",
            text="\n".join(lines) + "\n" if lines else "",
            language="yaml",
            notes=tuple(notes),
        )

    def read(self, path: Path) -> Policy:
        return self.parse(read_input(path, "policy", PolicyParseError), str(path))

    def parse(self, text: str | bytes, source: str) -> Policy:
        """Read the one SeccompProfile of a manifest (other documents are left alone)."""
        size = len(text) if isinstance(text, bytes) else len(text.encode(errors="surrogateescape"))
        if size > MAX_MANIFEST_BYTES:
            raise PolicyParseError(
                f"{source}: {size} bytes: larger than any manifest Kubernetes stores (etcd takes at most 1.5 MiB an "
                f"object); profiler reads manifests of up to {MAX_MANIFEST_BYTES >> 20} MiB"
            )
        profiles = [
            (document, lines)
            for document, lines in _documents(policy_text(text, source, "a manifest with a SeccompProfile"), source)
            if isinstance(document, dict) and document.get("kind") == KIND
        ]
        if len(profiles) != 1:
            found = f"{len(profiles)} SeccompProfiles" if profiles else "no SeccompProfile"
            raise PolicyParseError(f"{source}: holds {found}; give a manifest with exactly one")
        document, lines = profiles[0]
        version = document.get("apiVersion")
        if not isinstance(version, str) or not version.startswith(f"{API_GROUP}/"):
            raise PolicyParseError(
                f"{source}:{lines.get(('apiVersion',), lines.get((), 1))}: a SeccompProfile of {version!r}, not of "
                f"the Security Profiles Operator ({API_VERSION})"
            )
        if "spec" not in document:
            raise PolicyParseError(f"{source}:{lines.get((), 1)}: the SeccompProfile has no spec")
        reading = read_seccomp_spec(
            document["spec"], source=source, lines=lines, at=("spec",), dialect=Dialect.SPO, context=self.context
        )
        return reading.policy(source, PolicyFormat.K8S)


def _spec_lines(spec: SeccompSpec, comments: bool, base_profile: str | None) -> list[str]:
    assert spec.default_errno_ret == EPERM, "SPO's spec has no defaultErrnoRet: the runtime's default is EPERM"
    lines = ["spec:", f"  defaultAction: {yaml_scalar(spec.default_action)}"]
    if base_profile is not None:
        if comments:
            lines += [
                f"  # the operator adds the rules of the SeccompProfile {base_profile} of this namespace: it must hold",
                "  # the runtime's own calls between loading the filter and the exec, which this profile leaves out",
                "  # (SPO ships them as examples/baseprofile-runc.yaml and baseprofile-crun.yaml: apply one first)",
            ]
        lines.append(f"  baseProfileName: {yaml_scalar(base_profile)}")
    lines.append("  architectures:")
    lines += [f"    - {yaml_scalar(arch)}" for arch in spec.architectures]
    lines.append("  syscalls:")
    plain = [rule for rule in spec.rules if rule.action == ALLOW and not rule.args]
    if plain:
        lines += ["    - action: SCMP_ACT_ALLOW", "      names:"]
        lines += [_item(name, rule.comment, comments, "        ") for rule in plain for name in rule.names]
    for rule in spec.rules:
        if rule not in plain:
            lines += _rule_lines(rule, comments)
    return lines


def _comment(text: str) -> str:
    return f"# {visible(text)}"


def _item(value: str, comment: str | None, comments: bool, indent: str) -> str:
    return f"{indent}- {yaml_scalar(value)}" + (f"  {_comment(comment)}" if comments and comment else "")


def _rule_lines(rule: SeccompRule, comments: bool) -> list[str]:
    lines = [f"    {_comment(rule.comment)}"] if comments and rule.comment else []
    lines.append(f"    - action: {yaml_scalar(rule.action)}")
    if rule.errno_ret is not None:
        lines.append(f"      errnoRet: {rule.errno_ret}")
    lines.append("      names:")
    lines += [f"        - {yaml_scalar(name)}" for name in rule.names]
    if rule.args:
        lines.append("      args:")
        for condition in rule.args:
            lines += [f"        - index: {condition.index}", f"          value: {condition.value}"]
            if condition.value_two:
                lines.append(f"          valueTwo: {condition.value_two}")
            lines.append(f"          op: {yaml_scalar(condition.op)}")
    return lines


def _security_context(privileges: ContainerPrivileges, name: str, namespace: str | None, comments: bool) -> list[str]:
    """The container securityContext that uses the profile, as YAML comments to paste into a pod spec."""
    localhost = f"{LOCALHOST_PREFIX}/{namespace or 'NAMESPACE'}/{name}.json"
    block = ["securityContext:"]
    if privileges.no_new_privileges:
        if comments:
            block.append(
                "  # false sets no_new_privs: set-user-ID programs and file capabilities cannot raise privileges; "
                + SECCOMP_AND_NO_NEW_PRIVILEGES
            )
        block.append("  allowPrivilegeEscalation: false")
    if privileges.capabilities is not None:
        block += ["  capabilities:", "    drop:", "      - ALL"]
        if privileges.capabilities:
            block.append("    add:")
            block += [_item(cap, why, comments, "      ") for cap, why in privileges.capabilities]
    if privileges.filesystem is not None:
        writable = [*privileges.filesystem.tmpfs, *(path for path, _ in privileges.filesystem.writable)]
        if comments:
            block.append(
                "  # the root file system is read-only; mount an emptyDir or a volume at each path the runs wrote"
                + (f": {', '.join(writable)}" if writable else " (none)")
            )
            block += [f"  #   {path}: {why}" for path, why in privileges.filesystem.writable]
        block.append("  readOnlyRootFilesystem: true")
    block += ["  seccompProfile:", "    type: Localhost", f"    localhostProfile: {yaml_scalar(localhost)}"]
    lines = ["#", "# The securityContext of the containers that run it (paste under spec.containers[]):"]
    if comments and namespace is None:
        lines.append("# (NAMESPACE: the namespace the SeccompProfile is applied in; its status.localhostProfile says)")
    if comments:
        lines += [_comment(note) for note in privileges.notes]
    return lines + [f"#   {line}" for line in block]


def _loader(text: str) -> type[yaml.SafeLoader] | type[yaml.CSafeLoader]:
    """libyaml's loader, seven times faster, unless the text could nest deeper than its composer survives (it
    recurses in C, and crashes the process near 100,000 levels); PyYAML's own then raises RecursionError.

    Block collections nest no deeper than the columns of a line, flow ones no deeper than their brackets: their
    sum bounds the depth (brackets in strings or comments only make it more careful)."""
    if not yaml.__with_libyaml__:
        return yaml.SafeLoader
    widest = max(map(len, text.split("\n")), default=0)
    depth = deepest = 0
    for bracket in _FLOW_BRACKETS.findall(text):
        depth = max(depth + (1 if bracket in "[{" else -1), 0)
        deepest = max(deepest, depth)
    return yaml.CSafeLoader if widest + deepest < _LIBYAML_SAFE_DEPTH else yaml.SafeLoader


def _documents(text: str, source: str) -> Iterator[tuple[object, dict[JsonPath, int]]]:
    """Each YAML document with the line of each of its keys and items; a YAML error is one PolicyParseError."""
    loader: yaml.SafeLoader | yaml.CSafeLoader | None = None
    try:
        loader = _loader(text)(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            lines: dict[JsonPath, int] = {}
            if _node_lines(node, (), lines, {}) > MAX_EXPANDED_NODES:
                raise PolicyParseError(
                    f"{source}:{node.start_mark.line + 1}: its aliases make the document more than "
                    f"{MAX_EXPANDED_NODES} nodes; Kubernetes (go-yaml) refuses such excessive aliasing too"
                )
            yield loader.construct_document(node), lines
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        where = f"{source}:{line}" if line else source
        raise PolicyParseError(f"{where}: not valid YAML ({visible(error.problem or 'unreadable')})") from None
    except yaml.reader.ReaderError as error:
        raise PolicyParseError(
            f"{source}: not valid YAML (character {error.character:#x} at offset {error.position}: {error.reason})"
        ) from None
    except RecursionError:
        raise PolicyParseError(f"{source}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError:
        raise PolicyParseError(f"{source}: not valid YAML") from None
    finally:
        if loader is not None:
            loader.dispose()


def _node_lines(node: yaml.Node, path: JsonPath, lines: dict[JsonPath, int], sizes: dict[int, int]) -> int:
    """Records the line of each path; returns the number of nodes the node stands for, its aliases expanded.

    An alias repeats a node: each node is walked once, its size remembered, or a "billion laughs" document
    would take forever; the size says what reading the constructed document would cost.
    """
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines.setdefault((*path, key.value), key.start_mark.line + 1)
                size += 1 + _node_lines(value, (*path, key.value), lines, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            size += _node_lines(item, (*path, index), lines, sizes)
    sizes[id(node)] = size = min(size, MAX_EXPANDED_NODES + 1)
    return size


def _yaml_list(items: list[str], indent: str) -> list[str]:
    return [f"{indent}- {yaml_scalar(item)}" for item in items]
