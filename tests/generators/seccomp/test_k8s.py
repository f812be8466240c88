"""The k8s format: the SPO SeccompProfile manifest and its securityContext, read by PyYAML, and read back."""

from collections.abc import Callable

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.interface import RenderOptions
from generators.profile import Profile
from generators.seccomp.k8s import MAX_MANIFEST_BYTES, KubernetesFormat, object_name
from generators.seccomp.oci import OciFormat
from profiler.errors import PolicyParseError, ProfilerError
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import make_profile, profiles
from tests.generators.seccomp.test_reader import HOST

Golden = Callable[[str, str], None]
SPO_SPEC_FIELDS = {"defaultAction", "architectures", "syscalls", "flags", "listenerPath", "listenerMetadata",
                   "baseProfileName", "disabled"}  # fmt: skip


def security_context(text: str) -> dict[str, object]:
    """The commented securityContext block at the end, uncommented and read as YAML."""
    block = [line[4:] for line in text.splitlines() if line.startswith("#   ")]
    context: dict[str, object] = yaml.safe_load("\n".join(block))["securityContext"]
    return context


def test_golden_manifests(committed_profile: LoadTraces, golden: Golden) -> None:
    golden(
        "k8s/curl-fetch-args.yaml",
        KubernetesFormat().render(committed_profile("curl-fetch"), RenderOptions(argument_filters=True)),
    )
    chown = KubernetesFormat().render(committed_profile("chown"), RenderOptions(namespace="tools"))
    golden("k8s/chown.yaml", chown)
    three = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    golden("k8s/git-clone.yaml", KubernetesFormat().render(three, RenderOptions(min_runs=3)))


def test_the_manifest_is_a_seccomp_profile_yaml_reads(committed_profile: LoadTraces) -> None:
    text = KubernetesFormat().render(committed_profile("curl-fetch"), RenderOptions(argument_filters=True))
    manifest = yaml.safe_load(text)
    assert manifest["apiVersion"] == "security-profiles-operator.x-k8s.io/v1beta1"
    assert manifest["kind"] == "SeccompProfile"
    assert manifest["metadata"] == {"name": "curl"}
    assert set(manifest["spec"]) <= SPO_SPEC_FIELDS
    oci = OciFormat().render(committed_profile("curl-fetch"), RenderOptions(argument_filters=True, comments=False))
    oci_rules = yaml.safe_load(oci)["syscalls"]
    assert manifest["spec"]["syscalls"] == oci_rules
    assert manifest["spec"]["defaultAction"] == "SCMP_ACT_ERRNO" and "defaultErrnoRet" not in manifest["spec"]


def test_security_context_drops_all_and_adds_what_was_needed(committed_profile: LoadTraces) -> None:
    text = KubernetesFormat().render(committed_profile("chown"), RenderOptions(namespace="tools"))
    assert security_context(text) == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
        "seccompProfile": {"type": "Localhost", "localhostProfile": "operator/tools/chown.json"},
    }
    assert yaml.safe_load(text)["metadata"] == {"name": "chown", "namespace": "tools"}
    assert "#         - CHOWN  # in fchownat via setattr_prepare: 1× in 1/1 runs by /usr/bin/chown" in text


def test_a_non_root_run_that_needed_capabilities_keeps_privilege_escalation() -> None:
    profile = make_profile(needed=["CAP_NET_BIND_SERVICE"], uid=65534)
    text = KubernetesFormat().render(profile, RenderOptions())
    context = security_context(text)
    assert "allowPrivilegeEscalation" not in context
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert (
        "# No-new-privileges is left off: the runs ran as svc (uid 65534) and still used CAP_NET_BIND_SERVICE" in text
    )
    assert "operator/NAMESPACE/svc.json" in text


def test_object_names_follow_dns_rules() -> None:
    assert object_name("My Service_v2") == "my-service-v2"
    assert object_name("../..") == "profile"
    with pytest.raises(ProfilerError, match="is not a Kubernetes namespace name"):
        KubernetesFormat().render(make_profile(), RenderOptions(namespace="Not_Valid"))


@settings(max_examples=150, deadline=None)
@given(profile=profiles(), argument_filters=st.booleans(), comments=st.booleans())
def test_read_back_gives_what_the_oci_profile_gives(profile: Profile, argument_filters: bool, comments: bool) -> None:
    options = RenderOptions(argument_filters=argument_filters, comments=comments)
    text = KubernetesFormat().render(profile, options)
    assert text == KubernetesFormat().render(profile, options)
    manifest = KubernetesFormat(HOST).parse(text, "p.yaml")
    oci = OciFormat(HOST).parse(OciFormat().render(profile, options), "p.json")
    assert manifest.findings == ()
    assert (manifest.syscalls, manifest.architectures, manifest.address_families, manifest.namespaces) == (
        oci.syscalls,
        oci.architectures,
        oci.address_families,
        oci.namespaces,
    )


MANIFEST = """\
apiVersion: security-profiles-operator.x-k8s.io/v1beta1
kind: SeccompProfile
metadata:
  name: demo
spec:
  defaultAction: SCMP_ACT_ERRNO
  baseProfileName: runc-v1.1.0
  syscalls:
    - action: SCMP_ACT_ALLOW
      names: [read, write]
      comment: not a field of SPO
"""


def test_spo_fields_are_linted_with_their_lines() -> None:
    policy = KubernetesFormat(HOST).parse(MANIFEST, "p.yaml")
    assert policy.syscalls is not None and policy.syscalls.rules.names == {"read", "write"}
    assert [str(finding) for finding in policy.findings] == [
        "p.yaml:7: spec.baseProfileName: the Security Profiles Operator adds the rules of 'runc-v1.1.0', which this "
        "file does not show: profiler reads this profile's own rules only, and leaves the runtime's calls to it",
        "p.yaml:11: spec.syscalls[0].comment: unknown key 'comment': the API server rejects unknown fields "
        "(kubectl's default strict validation) or drops them",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00junk", "p.yaml: not a manifest with a SeccompProfile (not UTF-8 text)"),
        (b"  \n", "p.yaml: empty file; give a manifest with a SeccompProfile"),
        (b"apiVersion: v1\nkind: Pod\n", "p.yaml: holds no SeccompProfile; give a manifest with exactly one"),
        (
            MANIFEST.encode() + b"---\n" + MANIFEST.encode(),
            "p.yaml: holds 2 SeccompProfiles; give a manifest with exactly one",
        ),
        (
            b"apiVersion: example.com/v1\nkind: SeccompProfile\nspec: {}\n",
            "p.yaml:1: a SeccompProfile of 'example.com/v1', not of the Security Profiles Operator "
            "(security-profiles-operator.x-k8s.io/v1beta1)",
        ),
        (
            b"apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nspec:\n  syscalls: []\n",
            "p.yaml:3: spec: no defaultAction: runtimes refuse the profile (Docker reads {} as no filter at all)",
        ),
        (
            b"apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nspec:\n"
            b"  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n    - {names: [read], action: SCMP_ACT_ALLOW, 1: x}\n",
            "p.yaml:6: spec.syscalls[0]: has the key 1, which is not a string",
        ),
    ],
)
def test_bad_manifests_are_one_line_errors(content: bytes, message: str) -> None:
    with pytest.raises(PolicyParseError) as error:
        KubernetesFormat(HOST).parse(content, "p.yaml")
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (b"a: \x1f\n", "p.yaml: not valid YAML (character 0x1f at offset 3: "),
        (b"kind: SeccompProfile\nspec: [\n", "p.yaml:3: not valid YAML ("),
        (b"[" * 100_000 + b"]" * 100_000, "p.yaml: not valid YAML (nested too deeply)"),
        (b"- " * 100_000 + b"x\n", "p.yaml: not valid YAML (nested too deeply)"),
    ],
    ids=["control-character", "truncated", "nested-flow", "nested-block"],
)
def test_bad_yaml_is_one_line_whichever_parser_reads_it(content: bytes, start: str) -> None:
    """libyaml and PyYAML word their errors differently; libyaml's composer would crash the process on deep
    nesting, so such text goes to PyYAML's, which raises RecursionError."""
    with pytest.raises(PolicyParseError) as error:
        KubernetesFormat(HOST).parse(content, "p.yaml")
    assert str(error.value).startswith(start) and "\n" not in str(error.value)


def test_a_manifest_larger_than_kubernetes_stores_is_refused_unread() -> None:
    huge = MANIFEST + "#" * MAX_MANIFEST_BYTES + "\n"
    with pytest.raises(PolicyParseError, match=r"^p.yaml: \d+ bytes: larger than any manifest Kubernetes stores"):
        KubernetesFormat(HOST).parse(huge, "p.yaml")


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [*{chr(97 + level)}, *{chr(97 + level)}, *{chr(97 + level)}, "
    f"*{chr(97 + level)}, *{chr(97 + level)}, *{chr(97 + level)}, *{chr(97 + level)}, *{chr(97 + level)}]\n"
    for level in range(9)
)


def test_aliases_are_not_expanded_into_a_bomb() -> None:
    with pytest.raises(PolicyParseError, match=r"^bomb.yaml:1: its aliases make the document more than 1000000 nodes"):
        KubernetesFormat(HOST).parse(BILLION_LAUGHS, "bomb.yaml")


def test_a_seccomp_profile_whose_aliases_multiply_its_rules_is_refused() -> None:
    """Each alias of a rule of 2,000 names costs its reading 2,000 names: 1,000 of them would be 2,000,000."""
    names = "".join(f"        - name{index}\n" for index in range(2000))
    rule = f"    - &rule\n      action: SCMP_ACT_ALLOW\n      names:\n{names}"
    manifest = MANIFEST.split("  syscalls:")[0] + "  syscalls:\n" + rule + "    - *rule\n" * 1000
    with pytest.raises(PolicyParseError, match="its aliases make the document more than"):
        KubernetesFormat(HOST).parse(manifest, "p.yaml")
    fewer = MANIFEST.split("  syscalls:")[0] + "  syscalls:\n" + rule + "    - *rule\n" * 3
    assert len(KubernetesFormat(HOST).parse(fewer, "p.yaml").findings) > 2000  # every unknown name, read


@settings(max_examples=300, deadline=None)
@given(content=st.text(max_size=300) | st.binary(max_size=100))
def test_fuzzed_text_reads_or_fails_in_one_line(content: str | bytes) -> None:
    for text in (content, MANIFEST + (content if isinstance(content, str) else "")):
        try:
            KubernetesFormat(HOST).parse(text, "fuzz.yaml")
        except PolicyParseError as error:
            assert "\n" not in str(error) and str(error).startswith("fuzz.yaml")
