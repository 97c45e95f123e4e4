#!/usr/bin/env bash
# Checks the deployment files without a cluster or a Docker daemon:
#  - the Kubernetes manifests against the API schemas (kubernetes-validate, offline, strict),
#    as files and as kustomize renders them;
#  - the compose file with `docker-compose config` (or `docker compose config`) using env.example.
# SUBAN_REQUIRE_DEPLOY_CHECK=1 (CI) turns "no compose tool here" into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
K8S_VERSION=${K8S_VERSION:-1.30.0}

manifests=()
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}"
echo "kubernetes manifests: valid against Kubernetes $K8S_VERSION (strict)"
if command -v kubectl >/dev/null; then
  rendered=$(mktemp --suffix=.yaml)
  trap 'rm -f "$rendered"' EXIT
  kubectl kustomize deploy/k8s >"$rendered"
  "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$rendered"
  echo "kustomize render: valid"
fi

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  if [ "${SUBAN_REQUIRE_DEPLOY_CHECK:-0}" = 1 ]; then
    echo "neither 'docker compose' nor docker-compose is installed" >&2
    exit 1
  fi
  echo "skipping the compose check: neither 'docker compose' nor docker-compose is installed"
  exit 0
fi
"${compose[@]}" --env-file deploy/env.example -f deploy/compose.yaml config --quiet
echo "compose file: valid (${compose[*]})"
