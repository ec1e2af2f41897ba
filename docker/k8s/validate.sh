#!/usr/bin/env bash
# Checks the Kubernetes manifests with what this machine can install:
# every overlay rendered by kustomize (`kubectl kustomize`), each resource
# validated (strictly: no unknown fields) against Kubernetes 1.32's schemas
# by kubernetes-validate (PyPI), HAProxy's config checked by haproxy -c, and
# the scenarios by `tierlab validate`. Nothing here talks to a cluster, so
# scheduling, storage classes (the runs volume needs ReadWriteMany) and
# image pulls are not validated.
set -euo pipefail
cd "$(dirname "$0")"
tierlab=${TIERLAB:-$PWD/../../target/debug/tierlab}
command -v kubernetes-validate >/dev/null || { echo "k8s: kubernetes-validate is missing: pip install kubernetes-validate" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "k8s: kubectl (for kustomize) is missing" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  kubernetes-validate --strict --quiet -k 1.32.0 "$out/$name.yaml"
  echo "k8s: $name: $(grep -c '^kind:' "$out/$name.yaml") resources valid"
done
haproxy -c -q -f base/haproxy.cfg
for scenario in base/scenario.toml overlays/*/scenario.toml; do
  "$tierlab" validate "$scenario" >/dev/null
done
echo "k8s: haproxy.cfg and scenarios valid; not validated: anything needing a cluster"
