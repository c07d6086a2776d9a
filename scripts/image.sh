#!/bin/bash
# The container image, built and tried on this machine with no image registry to pull from
# (docs/install.md, "Built and tried with no image registry"). `make image` runs `all`; each
# step alone:
#
#   scripts/image.sh deps            Debian packages: mmdebstrap, buildah, podman, skopeo...
#   scripts/image.sh bases           Debian bookworm bases made with mmdebstrap, imported
#   scripts/image.sh build           buildah bud of the Containerfile on those bases
#   scripts/image.sh smoke           `fastmatch --version` in the image, as its user, on a
#                                    read-only root; the image's user, entrypoint and labels
#   scripts/image.sh smoke-webhook   the webhook answering /healthz over TLS on loopback, on a
#                                    read-only root (and not ready: no cluster behind it)
#   scripts/image.sh push-resolve    skopeo copy to a local docker-registry (TLS), then
#                                    `fastmatch resolve` of the pushed reference
#   scripts/image.sh all             all of the above in order, each step timed
#
# What it makes lives under $IMAGE_WORK (default build/image): a containers store of its own
# (vfs driver, so that it works in a sandbox without overlay mounts) and the TLS files. The
# base tarballs, the slow part, are kept across checkouts in $IMAGE_BASES (default
# ~/.cache/fastmatch/image-bases) and made again when a week old (Debian's security updates).
# Environment: IMAGE_WORK, IMAGE_BASES, IMAGE_NAME (default localhost/fastmatch),
# DEBIAN_MIRROR, FASTMATCH (the fastmatch that resolves, default .venv/bin/fastmatch).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WORK=${IMAGE_WORK:-$ROOT/build/image}
BASES=${IMAGE_BASES:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/fastmatch/image-bases}
NAME=${IMAGE_NAME:-localhost/fastmatch}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FASTMATCH=${FASTMATCH:-$ROOT/.venv/bin/fastmatch}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/fastmatch/__init__.py)
TAG="$NAME:$VERSION"
RUN_BASE=localhost/fastmatch-base:bookworm
BUILD_BASE=localhost/fastmatch-build-base:bookworm
# The image's own user (Containerfile `USER`).
UID_GID=65532:65532
STORE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
SKOPEO_STORE="containers-storage:[vfs@$WORK/storage+$WORK/run]"

say() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: FAILED: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing="" tool
    for tool in mmdebstrap buildah podman skopeo docker-registry openssl unshare; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || die "missing:$missing; as root: apt-get install mmdebstrap buildah podman skopeo docker-registry openssl uidmap"
    say "installing the Debian packages of$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        mmdebstrap buildah podman skopeo docker-registry openssl uidmap >/dev/null
}

have_image() { podman "${STORE[@]}" image exists "$1" 2>/dev/null; }

# One base: a minimal bookworm (the same Debian as python:3.11-slim, with its CPython 3.11)
# with PACKAGES, as a tarball kept in $WORK and imported into the store.
base() {
    local image=$1 tarball=$2 packages=$3
    shift 3
    if [ -n "$(find "$tarball" -mtime +7 2>/dev/null)" ]; then
        rm -f "$tarball"
        podman "${STORE[@]}" rmi --force "$image" >/dev/null 2>&1 || true
    fi
    if [ ! -s "$tarball" ]; then
        say "mmdebstrap bookworm with $packages -> $tarball"
        mmdebstrap --quiet --format=tar --variant=apt --include="$packages" "$@" bookworm "$tarball.part" \
            "$MIRROR"
        mv "$tarball.part" "$tarball"
    fi
    if ! have_image "$image"; then
        podman "${STORE[@]}" import --quiet "$tarball" "$image" >/dev/null
        say "imported $image"
    fi
}

bases() {
    mkdir -p "$WORK" "$BASES"
    # The runtime base leaves out manuals, translations and docs but the licences.
    base "$RUN_BASE" "$BASES/base-bookworm.tar" python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    base "$BUILD_BASE" "$BASES/build-base-bookworm.tar" \
        python3,python3-venv,python3-dev,build-essential,ca-certificates
}

# pip in the build stage downloads from the package index: trust the CA bundle this
# machine's pip trusts (a TLS-inspecting proxy's), mounted for the build's RUN steps only.
pip_cert_args() {
    local cert=${PIP_CERT:-}
    [ -n "$cert" ] || cert=$(python3 -m pip config get global.cert 2>/dev/null || true)
    if [ -n "$cert" ] && [ -f "$cert" ]; then
        printf '%s\n' -v "$cert:/run/fastmatch-build-ca.crt:ro" \
            --build-arg PIP_CERT=/run/fastmatch-build-ca.crt
    fi
}

build() {
    have_image "$RUN_BASE" && have_image "$BUILD_BASE" || bases
    local -a cert
    mapfile -t cert < <(pip_cert_args)
    local revision created
    revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    # The commit's time, so that two builds of one commit carry the same label.
    created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
    say "buildah bud -> $TAG"
    buildah "${STORE[@]}" bud --quiet --isolation chroot --layers=false "${cert[@]}" \
        --build-arg BASE_IMAGE="$RUN_BASE" --build-arg BUILD_IMAGE="$BUILD_BASE" \
        --build-arg VERSION="$VERSION" --build-arg REVISION="$revision" \
        --build-arg CREATED="$created" -t "$TAG" -f Containerfile . > "$WORK/build.log" 2>&1 \
        || die "buildah bud failed; the end of $WORK/build.log:
$(tail -30 "$WORK/build.log")"
    # What an earlier build left behind, untagged: the store keeps every copy in full (vfs).
    buildah "${STORE[@]}" rmi --prune >/dev/null 2>&1 || true
    say "built $TAG ($(podman "${STORE[@]}" image inspect --format '{{.Size}}' "$TAG") bytes)"
}

# A container of the image, removed when the script ends.
CONTAINER=""
MOUNTED=""
container() {
    have_image "$TAG" || build
    CONTAINER=$(buildah "${STORE[@]}" from --quiet "$TAG")
    MOUNTED=$(buildah "${STORE[@]}" mount "$CONTAINER")
}

REGISTRY_PID=""
WEBHOOK_PID=""
# unshare --fork ignores SIGTERM while its child runs: the command (its child) is sent it,
# and unshare ends with it.
stop_read_only() {
    local pid=$1 child
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        kill "$child" 2>/dev/null || true
    done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    # Only what this script started, by its process id; a stopped process's status (143) is
    # no failure of the script's.
    set +e
    [ -n "$WEBHOOK_PID" ] && stop_read_only "$WEBHOOK_PID"
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null
        wait "$REGISTRY_PID" 2>/dev/null
    fi
    if [ -n "$CONTAINER" ]; then
        buildah "${STORE[@]}" umount "$CONTAINER" >/dev/null 2>&1 || true
        buildah "${STORE[@]}" rm "$CONTAINER" >/dev/null 2>&1 || true
    fi
    return 0
}
trap cleanup EXIT

# `buildah run` as the image's user, with the image's environment.
in_image() { buildah "${STORE[@]}" run --isolation chroot --user "$UID_GID" "$CONTAINER" -- "$@"; }

# COMMAND inside the image's root mounted read-only (as readOnlyRootFilesystem does), with a
# tmpfs on /tmp (deploy/'s emptyDir), as the image's user, in a mount namespace of its own
# that ends with it. FILES are copied into /tmp/tls first. With RO_EXEC=1 the calling
# (sub)shell becomes the unshare process, so that `$!` of a `read_only ... &` is the process
# to stop (its child, the command, is killed with it: --kill-child).
read_only() {
    local files=$1
    shift
    ${RO_EXEC:+exec} unshare --mount --fork --kill-child -- /bin/sh -ec '
        root=$1 files=$2; shift 2
        mount --bind "$root" "$root"
        mount -o remount,bind,ro "$root"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        if [ -n "$files" ]; then mkdir "$root/tmp/tls"; cp $files "$root/tmp/tls/"; chmod -R a+r "$root/tmp/tls"; fi
        exec chroot --userspec='"$UID_GID"' "$root" /usr/bin/env -i HOME=/tmp \
            XDG_CACHE_HOME=/tmp/cache PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
            PATH=/opt/fastmatch/bin:/usr/bin:/bin "$@"
    ' sh "$MOUNTED" "$files" "$@"
}

smoke() {
    container
    local want="fastmatch $VERSION" got
    got=$(in_image fastmatch --version)
    [ "$got" = "$want" ] || die "buildah run: fastmatch --version said '$got', not '$want'"
    say "ok: buildah run: $got"
    got=$(read_only "" fastmatch --version)
    [ "$got" = "$want" ] || die "read-only root: fastmatch --version said '$got'"
    if read_only "" /bin/sh -c ': > /probe' 2>/dev/null; then
        die "the root filesystem was writable in the read-only check"
    fi
    say "ok: read-only root, as user $UID_GID: $got"
    # The image's own settings, as a kubelet reads them.
    podman "${STORE[@]}" image inspect "$TAG" > "$WORK/inspect.json"
    python3 - "$WORK/inspect.json" "$UID_GID" "$VERSION" <<'EOF'
import json, sys
config = json.load(open(sys.argv[1]))[0]["Config"]
want_user, version = sys.argv[2], sys.argv[3]
problems = []
if config.get("User") != want_user:
    problems.append(f"User is {config.get('User')!r}, not {want_user!r}")
if config.get("Entrypoint") != ["fastmatch", "webhook"]:
    problems.append(f"Entrypoint is {config.get('Entrypoint')!r}")
labels = config.get("Labels") or {}
for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
    if not labels.get(f"org.opencontainers.image.{key}"):
        problems.append(f"no label org.opencontainers.image.{key}")
if labels.get("org.opencontainers.image.version") != version:
    problems.append("label org.opencontainers.image.version is not " + version)
if problems:
    sys.exit("image: FAILED: " + "; ".join(problems))
print(f"image: ok: user {want_user}, entrypoint fastmatch webhook, {len(labels)} OCI labels",
      file=sys.stderr)
EOF
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A CA and a certificate for 127.0.0.1 and localhost, signed by it (made once).
tls() {
    local dir=$WORK/tls
    [ -s "$dir/tls.crt" ] && return 0
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=fastmatch image test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/tls.key" \
        -out "$dir/tls.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/ext.cnf"
    openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 3650 -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
}

# Wait until an HTTPS GET of URL answers (any status) within SECONDS; print the status.
https_status() {
    local url=$1 seconds=$2
    python3 - "$url" "$seconds" "$WORK/tls/ca.crt" <<'EOF'
import ssl, sys, time, urllib.error, urllib.request
url, seconds, ca = sys.argv[1], float(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
deadline = time.monotonic() + seconds
while True:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as answer:
            print(answer.status)
            break
    except urllib.error.HTTPError as exc:
        print(exc.code)
        break
    except OSError as exc:
        if time.monotonic() > deadline:
            print(f"no answer: {exc}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)
EOF
}

smoke_webhook() {
    container
    tls
    local port api
    port=$(free_port)
    api=$(free_port)
    # No cluster here: the kubeconfig names a closed port, so the sync keeps retrying and the
    # webhook is alive (/healthz) but not ready (/readyz), which is what a kubelet would see.
    cat > "$WORK/tls/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:$api", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
EOF
    RO_EXEC=1 read_only "$WORK/tls/tls.crt $WORK/tls/tls.key $WORK/tls/kubeconfig" \
        fastmatch webhook --kubeconfig /tmp/tls/kubeconfig --tls-cert /tmp/tls/tls.crt \
        --tls-key /tmp/tls/tls.key --host 127.0.0.1 --port "$port" > "$WORK/webhook.log" 2>&1 &
    WEBHOOK_PID=$!
    local healthz readyz
    healthz=$(https_status "https://127.0.0.1:$port/healthz" 30) \
        || die "the webhook did not answer on 127.0.0.1:$port; its log: $(tail -20 "$WORK/webhook.log")"
    [ "$healthz" = 200 ] || die "GET /healthz over TLS answered $healthz, not 200"
    readyz=$(https_status "https://127.0.0.1:$port/readyz" 5)
    say "ok: webhook on a read-only root: GET /healthz over TLS 200; /readyz $readyz (no cluster)"
    stop_read_only "$WEBHOOK_PID"
    WEBHOOK_PID=""
}

push_resolve() {
    have_image "$TAG" || build
    tls
    local port storage
    port=$(free_port)
    storage=$WORK/registry
    rm -rf "$storage"
    cat > "$WORK/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $storage}}
http:
  addr: 127.0.0.1:$port
  secret: fastmatch-image-test
  tls: {certificate: $WORK/tls/tls.crt, key: $WORK/tls/tls.key}
EOF
    docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
    REGISTRY_PID=$!
    https_status "https://127.0.0.1:$port/v2/" 15 >/dev/null \
        || die "docker-registry did not start: $(tail -5 "$WORK/registry.log")"
    local ref="127.0.0.1:$port/fastmatch:$VERSION"
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
        "$SKOPEO_STORE$TAG" "docker://$ref"
    say "pushed $ref"
    # What the registry holds, by skopeo, against what fastmatch resolves.
    local want got
    want=$(skopeo inspect --tls-verify=false "docker://$ref" \
        | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["Layers"]))')
    "$FASTMATCH" resolve --no-docker-config --no-cache --ca-file "$WORK/tls/ca.crt" "$ref" \
        > "$WORK/catalog.jsonl"
    got=$(python3 -c '
import json, sys
(line,) = open(sys.argv[1]).read().splitlines()
entry = json.loads(line)
assert all(layer["size"] > 0 for layer in entry["layers"]), entry
print(" ".join(layer["digest"] for layer in entry["layers"]))
' "$WORK/catalog.jsonl")
    [ -n "$got" ] && [ "$got" = "$want" ] \
        || die "fastmatch resolve $ref gave layers [$got], the registry holds [$want]"
    say "ok: fastmatch resolve $ref: $(wc -w <<< "$got") layers, as the registry holds them:"
    cat "$WORK/catalog.jsonl"
}

timed() {
    local start=$SECONDS
    "$@"
    say "step '$*' took $((SECONDS - start)) s"
}

case ${1:-all} in
    deps) deps ;;
    bases) deps; bases ;;
    build) deps; build ;;
    smoke) smoke ;;
    smoke-webhook) smoke_webhook ;;
    push-resolve) push_resolve ;;
    all)
        start=$SECONDS
        timed deps
        timed bases
        timed build
        timed smoke
        timed smoke_webhook
        timed push_resolve
        say "make image: $((SECONDS - start)) s in all"
        ;;
    *) die "unknown step '$1' (deps, bases, build, smoke, smoke-webhook, push-resolve, all)" ;;
esac
