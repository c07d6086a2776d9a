"""The deploy bundle as a cluster would get it, and the image it runs.

``kubectl kustomize`` renders ``deploy/`` and ``deploy/overlays/cert-manager/`` offline; every
object is validated against the Kubernetes API's own schemas (``kubernetes-validate``, strict:
an unknown field is an error) for each minor version the bundle supports; the ImageCache CRD's
schema accepts the ImageCache objects of ``examples/`` and refuses what ECI refuses; and the
pieces agree with each other and with the Containerfile (names, ports, labels, paths, the user),
since a mismatch there is a webhook that never answers.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

import fastmatch

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# matchConditions (the mirror-pod skip) are GA from 1.30: the oldest the bundle supports. It
# is checked against that one and the newest the validator knows (each loads its schemas).
OLDEST = (1, 30)
_KNOWN = sorted({v for v in kubernetes_validate.utils.all_versions()
                 if tuple(map(int, v.split(".")[:2])) >= OLDEST},
                key=lambda v: tuple(map(int, v.split(".")[:2])))
VERSIONS = sorted({_KNOWN[0], _KNOWN[-1]}, key=_KNOWN.index)
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}

Object = dict[str, Any]


def _kustomize(path: Path) -> list[Object]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "the deploy tests render the bundle with kubectl kustomize: install kubectl"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def bundle() -> list[Object]:
    return _kustomize(DEPLOY)


@pytest.fixture(scope="module")
def cert_manager() -> list[Object]:
    return _kustomize(DEPLOY / "overlays" / "cert-manager")


def _one(objects: list[Object], kind: str) -> Object:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def _name(obj: Object) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}"


# Every object against the API's schemas.


def test_the_bundle_renders_every_part(bundle: list[Object]):
    kinds = sorted(o["kind"] for o in bundle)
    assert kinds == sorted([
        "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment",
        "MutatingWebhookConfiguration", "Namespace", "PodDisruptionBudget", "Role",
        "RoleBinding", "Service", "ServiceAccount"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", ["deploy", "cert-manager"])
def test_every_object_is_valid_for_the_kubernetes_api(
        overlay: str, version: str, bundle: list[Object], cert_manager: list[Object]):
    objects = bundle if overlay == "deploy" else cert_manager
    checked = 0
    for obj in objects:
        if obj["kind"] in CERT_MANAGER_KINDS:
            continue  # not the Kubernetes API's: checked against the bundle below
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{_name(obj)} is not valid for Kubernetes {version}: {exc.message} "
                        f"at {'/'.join(map(str, exc.path))}")
        checked += 1
    assert checked == len(bundle)


def test_the_validator_refuses_a_broken_object(bundle: list[Object]):
    """The check above can fail: a typo in a field name is caught."""
    deployment = copy.deepcopy(_one(bundle, "Deployment"))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


# The ImageCache CRD (SPEC §6).


def _crd(bundle: list[Object]) -> Object:
    return _one(bundle, "CustomResourceDefinition")


def _cache_schema(bundle: list[Object]) -> Object:
    (version,) = _crd(bundle)["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def _example_caches() -> Iterator[Object]:
    for path in sorted((ROOT / "examples").iterdir()):
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        text = path.read_text(encoding="utf-8")
        docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
        for doc in docs:
            for obj in (doc or {}).get("items", [doc]) if isinstance(doc, dict) else []:
                if isinstance(obj, dict) and obj.get("kind") == "ImageCache":
                    yield obj


# The API server checks `format: date-time` (RFC 3339); jsonschema checks it only with an
# optional package, so the check is spelled out here.
DATES = jsonschema.FormatChecker([])


@DATES.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def _validate_cache(bundle: list[Object], obj: Object) -> None:
    jsonschema.validate(obj, _cache_schema(bundle), format_checker=DATES)


def test_the_crd_is_ecis_imagecache(bundle: list[Object]):
    crd = _crd(bundle)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "imagecaches.eci.alibabacloud.com"
    assert (spec["group"], spec["scope"]) == ("eci.alibabacloud.com", "Cluster")
    assert spec["names"]["kind"] == "ImageCache" and spec["names"]["shortNames"] == ["ic"]
    (version,) = spec["versions"]
    assert version["name"] == "v1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {"CacheId": ".status.imageCacheId", "Phase": ".status.phase",
                       "Progress": ".status.progress", "Age": ".metadata.creationTimestamp"}


def test_the_crd_applies_alone_from_its_documented_path(bundle: list[Object]):
    """`kubectl apply -f deploy/crd-imagecache.yaml` installs the bundle's CRD."""
    alone = yaml.safe_load((DEPLOY / "crd-imagecache.yaml").read_text(encoding="utf-8"))
    rendered = copy.deepcopy(_crd(bundle))
    rendered["metadata"].pop("labels")  # the bundle's part-of label, added by kustomize
    assert alone == rendered


def test_the_crd_accepts_the_examples_imagecaches(bundle: list[Object]):
    caches = list(_example_caches())
    assert len(caches) >= 5, "examples/imagecaches.json holds a cache in each state"
    assert {c["status"]["phase"] for c in caches} >= {"Ready", "Creating", "Failed", "Preparing"}
    for cache in caches:
        _validate_cache(bundle, cache)


def _refusal(bundle: list[Object], change: Any) -> str:
    cache = copy.deepcopy(next(_example_caches()))
    change(cache)
    with pytest.raises(jsonschema.ValidationError) as caught:
        _validate_cache(bundle, cache)
    return "/".join(map(str, caught.value.absolute_path))


@pytest.mark.parametrize(("what", "change", "where"), [
    ("no images", lambda c: c["spec"].pop("images"), "spec"),
    ("an empty image list", lambda c: c["spec"].update(images=[]), "spec/images"),
    ("21 images (ECI allows 20)",
     lambda c: c["spec"].update(images=[f"app:{n}" for n in range(21)]), "spec/images"),
    ("19 GiB (ECI's least is 20)", lambda c: c["spec"].update(imageCacheSize=19),
     "spec/imageCacheSize"),
    ("32769 GiB", lambda c: c["spec"].update(imageCacheSize=32769), "spec/imageCacheSize"),
    ("a size as text", lambda c: c["spec"].update(imageCacheSize="20"), "spec/imageCacheSize"),
    ("a phase ECI does not have", lambda c: c["status"].update(phase="Running"),
     "status/phase"),
    ("a pull secret without its namespace",
     lambda c: c["spec"].update(imagePullSecrets=["regcred"]), "spec/imagePullSecrets/0"),
    ("a date that is not one", lambda c: c["status"].update(expireDateTime="next week"),
     "status/expireDateTime"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_crd_refuses_what_eci_refuses(bundle: list[Object], what: str, change: Any,
                                          where: str):
    assert _refusal(bundle, change) == where, what


def test_the_crd_keeps_fields_eci_adds(bundle: list[Object]):
    """ECI writes more status than SPEC §6 reads; the API server must not prune it."""
    schema = _cache_schema(bundle)
    assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
    cache = copy.deepcopy(next(_example_caches()))
    cache["status"]["flashSnapshotId"] = "s-2ze0000000000000000"
    _validate_cache(bundle, cache)


# The pieces agree with each other.


def _selects(selector: Object, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector's verdict on these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for req in selector.get("matchExpressions", []):
        key, op, values = req["key"], req["operator"], req.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _webhook(bundle: list[Object]) -> Object:
    (hook,) = _one(bundle, "MutatingWebhookConfiguration")["webhooks"]
    return hook


def _pod(bundle: list[Object]) -> Object:
    return _one(bundle, "Deployment")["spec"]["template"]


def test_the_webhook_is_registered_to_fail_open_on_pod_creation(bundle: list[Object]):
    hook = _webhook(bundle)
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["sideEffects"] == "NoneOnDryRun"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    # Far above the webhook's own --budget-ms, far below the API server's 10 s default.
    budget_ms = int(_flag(bundle, "--budget-ms"))
    assert budget_ms * 5 <= hook["timeoutSeconds"] * 1000 <= 5000


def test_the_webhook_skips_kube_system_its_namespace_and_its_pods(bundle: list[Object]):
    hook = _webhook(bundle)
    deployment = _one(bundle, "Deployment")
    own = deployment["metadata"]["namespace"]
    ns = hook["namespaceSelector"]
    for name, called in [("kube-system", False), (own, False), ("default", True),
                         ("shop", True)]:
        labels = {"kubernetes.io/metadata.name": name}
        assert _selects(ns, labels) is called, name
    assert not _selects(hook["objectSelector"], _pod(bundle)["metadata"]["labels"])
    assert _selects(hook["objectSelector"], {"app": "web"})
    # Mirror pods, by their annotation (CEL: checked here for the key it names).
    (condition,) = hook["matchConditions"]
    assert "'kubernetes.io/config.mirror' in object.metadata.annotations" in \
        condition["expression"].replace("\n", " ")


def test_the_webhook_calls_the_service_that_reaches_the_pods(bundle: list[Object]):
    service = _one(bundle, "Service")
    target = _webhook(bundle)["clientConfig"]["service"]
    assert (target["name"], target["namespace"]) == (
        service["metadata"]["name"], service["metadata"]["namespace"])
    assert target["path"] == "/mutate"
    (port,) = service["spec"]["ports"]
    assert target["port"] == port["port"]
    assert _selects({"matchLabels": service["spec"]["selector"]},
                    _pod(bundle)["metadata"]["labels"])
    (container,) = _pod(bundle)["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["targetPort"] in ports
    assert int(_flag(bundle, "--port")) == ports[port["targetPort"]]


def _flag(bundle: list[Object], name: str) -> str:
    (container,) = _pod(bundle)["spec"]["containers"]
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith(name + "=")]
    return value


def test_the_deployment_is_highly_available_and_locked_down(bundle: list[Object]):
    deployment = _one(bundle, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    assert _selects(spec["selector"], labels)
    (term,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(term["podAffinityTerm"]["labelSelector"], labels)
    pdb = _one(bundle, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and _selects(pdb["spec"]["selector"], labels)

    (container,) = pod["containers"]
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["scheme"] == "HTTPS" and probe["port"] == "https"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == _one(bundle, "ServiceAccount")["metadata"]["name"]
    # What the image writes goes to /tmp, which must be a volume on a read-only root.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_deployments_arguments_are_the_webhooks_own(bundle: list[Object]):
    """The container's args parse as `fastmatch webhook`'s, with the values the probes and
    the Service expect (a renamed flag would crash-loop every replica)."""
    from fastmatch.cli import build_parser

    (container,) = _pod(bundle)["spec"]["containers"]
    args = build_parser().parse_args(["webhook", *container["args"]])
    assert args.port == int(_flag(bundle, "--port"))
    assert args.tls_cert == _flag(bundle, "--tls-cert")
    assert args.budget_ms == float(_flag(bundle, "--budget-ms"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["webhook", *container["args"], "--no-such-flag"])


def test_the_webhook_reads_its_certificate_from_the_mounted_secret(bundle: list[Object]):
    (container,) = _pod(bundle)["spec"]["containers"]
    volumes = {v["name"]: v for v in _pod(bundle)["spec"]["volumes"]}
    for flag in ("--tls-cert", "--tls-key"):
        path = Path(_flag(bundle, flag))
        (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
        assert "secret" in volumes[mount["name"]] and mount["readOnly"] is True


def test_the_rbac_grants_what_the_webhook_needs_and_no_more(bundle: list[Object]):
    account = _one(bundle, "ServiceAccount")["metadata"]
    subject = {"kind": "ServiceAccount", "name": account["name"],
               "namespace": account["namespace"]}
    cluster_role = _one(bundle, "ClusterRole")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"])
             for r in cluster_role["rules"]}
    assert rules == {
        (("eci.alibabacloud.com",), ("imagecaches",)): ["create", "get", "list", "watch"],
        (("",), ("namespaces",)): ["get", "list", "watch"],
    }
    assert not [r for r in cluster_role["rules"] if "resourceNames" in r]
    role = _one(bundle, "Role")
    assert role["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": ["eci-profile"],
                              "verbs": ["get", "list", "watch"]}]
    for kind, role_obj in [("ClusterRoleBinding", cluster_role), ("RoleBinding", role)]:
        binding = _one(bundle, kind)
        assert binding["subjects"] == [subject]
        assert binding["roleRef"]["kind"] == role_obj["kind"]
        assert binding["roleRef"]["name"] == role_obj["metadata"]["name"]
        assert binding["metadata"].get("namespace") == role_obj["metadata"].get("namespace")


# The image: named once, built to run as the Deployment runs it.


def _kustomizations() -> list[tuple[Path, Object]]:
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8")))
            for p in sorted(DEPLOY.rglob("kustomization.yaml"))]


def test_the_image_is_named_in_one_place_at_this_version(bundle: list[Object],
                                                          cert_manager: list[Object]):
    named = [(p, k["images"]) for p, k in _kustomizations() if "images" in k]
    assert len(named) == 1, f"images: in {[str(p) for p, _ in named]}"
    ((_, (image,)),) = named
    assert image["newTag"] == fastmatch.__version__
    want = f"{image['newName']}:{image['newTag']}"
    for objects in (bundle, cert_manager):
        images = [c["image"] for o in objects if o["kind"] == "Deployment"
                  for c in o["spec"]["template"]["spec"]["containers"]]
        assert images == [want]
    for path in DEPLOY.rglob("*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*image:\s", line):
                assert line.split(":", 1)[1].strip() == image["name"], f"{path}: {line}"


def _containerfile() -> str:
    return (ROOT / "Containerfile").read_text(encoding="utf-8")


def _instruction(name: str) -> list[str]:
    """The arguments of each NAME instruction of the Containerfile's last (runtime) stage."""
    stage = re.split(r"^FROM .*$", _containerfile(), flags=re.M)[-1]
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", stage, flags=re.M)]


def test_the_image_runs_the_webhook_as_the_deployment_expects(bundle: list[Object]):
    text = _containerfile()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, flags=re.M)
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2, "multi-stage"
    assert json.loads(_instruction("ENTRYPOINT")[-1]) == ["fastmatch", "webhook"]
    (user,) = _instruction("USER")
    uid, gid = (int(n) for n in user.split(":"))
    pod = _pod(bundle)["spec"]
    assert uid != 0
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid, gid)
    (container,) = pod["containers"]
    exposed = {int(p.split("/")[0]) for p in _instruction("EXPOSE")}
    assert {p["containerPort"] for p in container["ports"]} <= exposed
    # The image's default arguments are the files the Deployment mounts.
    cmd = json.loads(_instruction("CMD")[-1])
    assert cmd[cmd.index("--tls-cert") + 1] == _flag(bundle, "--tls-cert")
    assert cmd[cmd.index("--tls-key") + 1] == _flag(bundle, "--tls-key")
    labels = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", text))
    assert {"title", "version", "revision", "created", "source", "licenses"} <= labels


def test_the_build_context_is_the_package_alone():
    """.containerignore keeps a developer's venv, builds and image store out of the image."""
    lines = [line.strip() for line in
             (ROOT / ".containerignore").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for args in re.findall(r"^COPY (?!--from)(.*)$", _containerfile(), flags=re.M):
        copied.update(args.split()[:-1])
    assert copied <= kept
    assert copied >= {"pyproject.toml", "setup.py", "src"}


# The cert-manager overlay.


def test_cert_manager_issues_the_secret_the_webhook_mounts(cert_manager: list[Object]):
    certificate = _one(cert_manager, "Certificate")
    issuer = _one(cert_manager, "Issuer")
    service = _one(cert_manager, "Service")["metadata"]
    hook_config = _one(cert_manager, "MutatingWebhookConfiguration")
    assert certificate["apiVersion"] == issuer["apiVersion"] == "cert-manager.io/v1"
    spec = certificate["spec"]
    assert spec["issuerRef"] == {"kind": "Issuer", "name": issuer["metadata"]["name"]}
    assert issuer["metadata"]["namespace"] == certificate["metadata"]["namespace"]
    assert f"{service['name']}.{service['namespace']}.svc" in spec["dnsNames"]
    volumes = {v["name"]: v for v in _pod(cert_manager)["spec"]["volumes"]}
    assert spec["secretName"] in {v["secret"]["secretName"] for v in volumes.values()
                                  if "secret" in v}
    meta = certificate["metadata"]
    assert hook_config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{meta['namespace']}/{meta['name']}"}
    # Nothing else differs from the plain bundle but what cert-manager adds.
    assert len(cert_manager) == 11 + 2


# deploy/certs.sh: the certificate without cert-manager.


def _script_default(name: str) -> str:
    text = (DEPLOY / "certs.sh").read_text(encoding="utf-8")
    match = re.search(rf"^{name}=(?:\$\{{{name}:-)?([^}}\n]+)\}}?$", text, flags=re.M)
    assert match, name
    return match.group(1)


def test_certs_sh_signs_a_certificate_the_api_server_accepts_for_the_service(
        bundle: list[Object], tmp_path: Path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl")
    service = _one(bundle, "Service")["metadata"]
    assert (_script_default("NAMESPACE"), _script_default("SERVICE")) == (
        service["namespace"], service["name"])
    volumes = _pod(bundle)["spec"]["volumes"]
    assert _script_default("SECRET") in {v["secret"]["secretName"] for v in volumes
                                         if "secret" in v}
    assert _script_default("WEBHOOK") == _one(
        bundle, "MutatingWebhookConfiguration")["metadata"]["name"]

    env = {**os.environ, "CERTS_DIR": str(tmp_path)}

    def make() -> tuple[bytes, str]:
        out = subprocess.run([str(DEPLOY / "certs.sh"), "--files-only"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        verified = subprocess.run(
            [openssl, "verify", "-CAfile", tmp_path / "ca.crt", tmp_path / "tls.crt"],
            capture_output=True, text=True, timeout=30, check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        names = subprocess.run(
            [openssl, "x509", "-in", tmp_path / "tls.crt", "-noout", "-ext", "subjectAltName"],
            capture_output=True, text=True, timeout=30, check=True).stdout
        return (tmp_path / "ca.crt").read_bytes(), names

    ca, names = make()
    assert f"DNS:{service['name']}.{service['namespace']}.svc" in names
    assert oct((tmp_path / "tls.key").stat().st_mode & 0o777) == "0o600"
    # A renewal signs with the same CA, so the caBundle already in the cluster stays right.
    again, _ = make()
    assert again == ca


def test_the_install_guides_one_namespace_rollout_renders(tmp_path: Path):
    """docs/install.md, step 5: the folder a user writes beside deploy/ builds, and its
    webhook then skips a namespace without the label."""
    guide = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    step = guide.split("## 5.", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```yaml\n(.*?)```", step, flags=re.S)
    shutil.copytree(DEPLOY, tmp_path / "deploy", symlinks=True)
    (tmp_path / "fastmatch-rollout").mkdir()
    (tmp_path / "fastmatch-rollout" / "kustomization.yaml").write_text(snippet)
    rendered = _kustomize(tmp_path / "fastmatch-rollout")
    hook = _webhook(rendered)
    for labels, called in [({"kubernetes.io/metadata.name": "shop"}, False),
                           ({"kubernetes.io/metadata.name": "shop",
                             "fastmatch.io/enabled": "true"}, True),
                           ({"kubernetes.io/metadata.name": "kube-system",
                             "fastmatch.io/enabled": "true"}, False)]:
        assert _selects(hook["namespaceSelector"], labels) is called, labels
    assert "kubectl label namespace shop fastmatch.io/enabled=true" in step
