#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests, run by .ci/run:
# 1. every manifest against the Kubernetes API schemas, strictly (unknown
#    fields are errors), with PyPI's kubernetes-validate (installed into a
#    virtualenv under target/ci-tools on first use);
# 2. what schemas cannot see: kustomization.yaml lists every manifest,
#    probes use /health and /ready, the workers' memory request covers the
#    cache budget the ConfigMap sets, and the NetworkPolicy admits only
#    gateways to the workers' HTTP port.
set -euo pipefail
cd "$(dirname "$0")"
venv=../../target/ci-tools/kubernetes-validate
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate
fi
manifests=(secret.yaml config.yaml gateway.yaml worker.yaml disruption.yaml network-policy.yaml)
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
"$venv/bin/python" - "${manifests[@]}" <<'PY'
import sys
import yaml

def size(text):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for u in sorted(units, key=len, reverse=True):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    return float(text)

docs = {}
for name in sys.argv[1:]:
    for d in yaml.safe_load_all(open(name)):
        docs[(d["kind"], d["metadata"]["name"])] = d
listed = set(yaml.safe_load(open("kustomization.yaml"))["resources"])
assert listed == set(sys.argv[1:]), f"kustomization.yaml lists {sorted(listed)}"
config = docs[("ConfigMap", "img-proxy")]["data"]
for kind, name in (("Deployment", "img-proxy-gateway"), ("StatefulSet", "img-proxy-worker")):
    c = docs[(kind, name)]["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health", name
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready", name
worker = docs[("StatefulSet", "img-proxy-worker")]["spec"]
requested = size(worker["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"])
cache = size(config["CACHE_MAX_BYTES"])
assert requested >= cache + (128 << 20), f"worker memory {requested} < cache {cache} + 128Mi"
mounts = {m["mountPath"] for m in worker["template"]["spec"]["containers"][0]["volumeMounts"]}
assert config["CACHE_DIR"] in mounts, "CACHE_DIR is not the volume's mount path"
assert docs[("Service", "img-proxy-worker")]["spec"]["clusterIP"] == "None"
assert config["KNOWN_HOSTS"] == "img-proxy-worker"
policy = docs[("NetworkPolicy", "img-proxy-worker")]["spec"]
http_rule = [r for r in policy["ingress"] if r["ports"][0]["port"] == 8080]
assert http_rule[0]["from"] == [{"podSelector": {"matchLabels": {
    "app.kubernetes.io/name": "img-proxy", "app.kubernetes.io/component": "gateway"}}}]
print(f"kubernetes manifests: {len(docs)} resources valid and consistent")
PY
