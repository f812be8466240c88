"""The registry: each PolicyFormat to its implementation; the one module that imports every format, on use.

    renderer(format)      the format's module, which renders a profile
    reader(format)        its reader of deployed policies (PolicyParseError for formats nobody deploys)
    correction(comparison)  the lines that make the compared policy allow what it misses, in its own format

A format module is imported only when its format is used: `generate --format docker` loads neither the
systemd nor the OCI code.
"""

from typing import assert_never

from generators.comparison import Comparison
from generators.correction import Correction, Corrector, plain_correction
from generators.interface import PolicyFormat, PolicyReader, Renderer
from generators.policy_names import check_profile_names
from profiler.errors import PolicyParseError


def renderer(policy_format: PolicyFormat) -> Renderer:
    """The format's module: every format renders a profile; some also read deployed policies."""
    match policy_format:
        case PolicyFormat.SYSTEMD:
            from generators.systemd.format import SystemdFormat

            return SystemdFormat()
        case PolicyFormat.OCI:
            from generators.seccomp.oci import OciFormat

            return OciFormat()
        case PolicyFormat.K8S:
            from generators.seccomp.k8s import KubernetesFormat

            return KubernetesFormat()
        case PolicyFormat.DOCKER:
            from generators.seccomp.docker import DockerFormat

            return DockerFormat()
        case PolicyFormat.JSON:
            from generators.json_profile import JsonProfileFormat

            return JsonProfileFormat()
        case _:
            assert_never(policy_format)


def reader(policy_format: PolicyFormat) -> PolicyReader:
    """The reader of deployed policies in this format; PolicyParseError for formats nobody deploys."""
    implementation = renderer(policy_format)
    if not isinstance(implementation, PolicyReader):
        raise PolicyParseError(
            f"{policy_format.value} output is not a deployed policy: compare a systemd unit or OCI JSON"
        )
    return implementation


def correction(comparison: Comparison) -> Correction | None:
    """The correction of the compared policy, in its format (in words for one no policy is deployed in), or None
    when it needs none."""
    if not comparison.fix:
        return None
    check_profile_names(comparison.profile)
    implementation = renderer(comparison.policy.format)
    if isinstance(implementation, Corrector):
        return implementation.correct(comparison)
    return plain_correction(comparison)
