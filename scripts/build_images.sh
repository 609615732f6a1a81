#!/usr/bin/env bash
# Build the operator and trainer images without a container registry or daemon, then smoke-run them:
# a Debian bookworm root filesystem from Debian's own archive (mmdebstrap) becomes the base image, buildah
# builds both Dockerfiles on it (chroot isolation, no daemon), and each image's entrypoint runs once
# (`envgen --help`, `envgen operator --help`, and `envgen-train` on a tiny Crafter task).
#
#   scripts/build_images.sh                          # CPU torch
#   TORCH_VARIANT=cu128 scripts/build_images.sh      # CUDA torch (the trainer's build argument)
#
# Needs root (or rootless buildah with subuids), `apt-get install mmdebstrap buildah`, network access to the
# Debian archive and the Python package index (PIP_FIND_LINKS, PIP_CERT and TORCH_INDEX are honoured, see
# below). Set SMOKE=0 to build only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SUITE=${SUITE:-bookworm}
TORCH_VARIANT=${TORCH_VARIANT:-cpu}
WORK=${IMAGE_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/envgen/images}
BASE_IMAGE=localhost/envgen-base:$SUITE
OPERATOR_IMAGE=localhost/envgen-operator:$VERSION
TRAINER_IMAGE=localhost/envgen-trainer:$VERSION-$TORCH_VARIANT
BUILDAH=(buildah)
BUILD=(bud --isolation chroot --layers)

log() { printf '[images] %s\n' "$*" >&2; }
mkdir -p "$WORK"

for tool in mmdebstrap buildah; do
    command -v "$tool" >/dev/null || { log "$tool is missing: apt-get install mmdebstrap buildah"; exit 1; }
done

# 1. The base: Python 3.11 (as `python`), venv, CA certificates, useradd, and the libGL/glib procgen needs.
if ! "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ ! -s "$WORK/$SUITE.tar" ]; then
        log "debootstrapping $SUITE into $WORK/$SUITE.tar"
        mmdebstrap --mode=root --variant=minbase \
            --include=python3,python3-venv,python-is-python3,ca-certificates,passwd,libgl1,libglib2.0-0 \
            "$SUITE" "$WORK/$SUITE.tar.part"
        mv "$WORK/$SUITE.tar.part" "$WORK/$SUITE.tar"
    fi
    log "importing $BASE_IMAGE"
    ctr=$("${BUILDAH[@]}" from scratch)
    "${BUILDAH[@]}" add "$ctr" "$WORK/$SUITE.tar" /
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python "$ctr"
    "${BUILDAH[@]}" commit --rm "$ctr" "$BASE_IMAGE"
fi

# 2. The images. A local wheel folder (PIP_FIND_LINKS) and a CA bundle for a TLS-inspecting proxy (PIP_CERT)
# are mounted read-only and named in a pip.conf for the build only; neither ends up in an image.
MOUNTS=()
if [ -n "${PIP_FIND_LINKS:-}" ] || [ -n "${PIP_CERT:-}" ]; then
    conf="$WORK/pip.conf"
    echo "[global]" >"$conf"
    if [ -n "${PIP_FIND_LINKS:-}" ]; then
        echo "find-links = $PIP_FIND_LINKS" >>"$conf"
        for dir in $PIP_FIND_LINKS; do MOUNTS+=(--volume "$dir:$dir:ro"); done
    fi
    if [ -n "${PIP_CERT:-}" ]; then
        echo "cert = /etc/pip-build-ca.crt" >>"$conf"
        MOUNTS+=(--volume "$PIP_CERT:/etc/pip-build-ca.crt:ro")
    fi
    MOUNTS+=(--volume "$conf:/etc/pip.conf:ro")
fi
TORCH_ARGS=(--build-arg "TORCH_VARIANT=$TORCH_VARIANT")
[ -n "${TORCH_INDEX:-}" ] && TORCH_ARGS+=(--build-arg "TORCH_INDEX=$TORCH_INDEX")

log "building $OPERATOR_IMAGE"
time "${BUILDAH[@]}" "${BUILD[@]}" "${MOUNTS[@]}" --build-arg "BASE=$BASE_IMAGE" -f Dockerfile -t "$OPERATOR_IMAGE" .
log "building $TRAINER_IMAGE"
time "${BUILDAH[@]}" "${BUILD[@]}" "${MOUNTS[@]}" --build-arg "BASE=$BASE_IMAGE" "${TORCH_ARGS[@]}" \
    -f trainer_image/Dockerfile -t "$TRAINER_IMAGE" .
"${BUILDAH[@]}" images --filter "reference=envgen-*"
[ "${SMOKE:-1}" = 0 ] && exit 0

# 3. Smoke runs: each image's own entrypoint, as its own user.
run_in() {  # image, then the command line after the entrypoint
    local image=$1 ctr entry
    shift
    ctr=$("${BUILDAH[@]}" from "$image")
    entry=$("${BUILDAH[@]}" inspect --format '{{index .OCIv1.Config.Entrypoint 0}}' "$ctr")
    "${BUILDAH[@]}" run --isolation chroot --user 10001 "$ctr" -- "$entry" "$@"
    local rc=$?
    "${BUILDAH[@]}" rm "$ctr" >/dev/null
    return $rc
}
log "operator image: envgen --help, envgen operator --help"
run_in "$OPERATOR_IMAGE" --help
run_in "$OPERATOR_IMAGE" operator --help

log "trainer image: envgen-train on a tiny Crafter task"
out=$(mktemp -d)
chmod 777 "$out"
trap 'rm -rf "$out"' EXIT
"${PYTHON:-.venv/bin/python}" - "$out/task.json" <<'PY'
import sys

from envgen.contracts import TrainingTask
from envgen.spec import AgentSpec

agent = AgentSpec(num_envs=2, rollout_steps=32, minibatches=2, device="cpu")
task = TrainingTask(
    run="smoke", name="smoke-c1-s0", phase="cycle", cycle=1, seed=0, game="crafter", game_steps=128,
    eval_episodes=1, eval_runs=1, agent=agent, checkpoint_out="/out/c1.pt", output_dir="/out/smoke-c1-s0",
)
open(sys.argv[1], "w").write(task.model_dump_json(by_alias=True))
PY
ctr=$("${BUILDAH[@]}" from "$TRAINER_IMAGE")
"${BUILDAH[@]}" run --isolation chroot --user 10001 --volume "$out:/out" "$ctr" -- \
    envgen-train --task /out/task.json --termination-log /out/termination-log
"${BUILDAH[@]}" rm "$ctr" >/dev/null
log "termination message: $(cat "$out/termination-log")"
test -s "$out/c1.pt"
log "done"
