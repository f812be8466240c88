"""The seccomp family: OCI/Docker JSON, the Security Profiles Operator's SeccompProfile, docker run flags.

spec         the runtime-spec's seccomp vocabulary, and the filter built from a profile (oci and k8s write it)
reading      what a document's keys, rules and argument comparisons mean to runc, crun and libseccomp
reader       a seccomp document read into a Policy, with lint findings (oci and k8s read with it)
json_lines   JSON with the line of every value, for findings with lines
privileges   the capabilities and no-new-privileges a container is granted (docker and k8s write them)
correction   what a correction of a seccomp profile adds (oci and k8s write it)
oci k8s docker   the formats, each with its renderer, its reader where people deploy it, its correction
"""
