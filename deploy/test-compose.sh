#!/usr/bin/env bash
# The compose cluster on real containers, as the README tells users to run
# it (see deploy/compose_test.py for the checks). Run by .ci/run.
#
# 1. Builds local stand-ins for base images that are not present and cannot
#    be pulled here (deploy/standins/build.sh); images already present,
#    stand-in or official, are reused, and so is Docker's build cache, so
#    a second run only rebuilds what changed.
# 2. Runs the checks with `docker compose` when that exists, else
#    `docker-compose`, under its own project name so that it never touches
#    a cluster you run from this directory.
# 3. Removes everything it started (containers, networks, volumes; the
#    origin server runs inside the check process), pass or fail. Images
#    stay, as the cache for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

if docker compose version >/dev/null 2>&1; then
    export COMPOSE_CMD="docker compose"
else
    export COMPOSE_CMD="docker-compose"
fi
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-imgproxytest}
# The load balancer publishes 8080 as the README says (Prometheus 9090),
# or another free port when something on this machine already listens there.
free_port() {
    python3 -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError:
    s.bind(("0.0.0.0", 0))
print(s.getsockname()[1])' "$1"
}
export LB_PORT=${LB_PORT:-$(free_port 8080)}
export PROMETHEUS_PORT=${PROMETHEUS_PORT:-$(free_port 9090)}
# The committed .env holds the development secret; the test uses its own.
export CLUSTER_SECRET=${CLUSTER_SECRET:-compose-test-$(date +%s)-secret}

# Volumes present before the run: compose 1.29 gives the workers'
# anonymous cache volumes no project label, and a container replaced during
# the disruptions can leave its volume behind, so new unused volumes are
# found by difference at the end.
volumes_before=$(docker volume ls -q | sort)

cleanup() {
    local rc=$?
    $COMPOSE_CMD -p "$COMPOSE_PROJECT_NAME" --profile monitoring down -v --remove-orphans --timeout 5 \
        >/dev/null 2>&1 || true
    local leftover
    leftover=$(comm -13 <(echo "$volumes_before") <(docker volume ls -q --filter dangling=true | sort))
    [ -z "$leftover" ] || docker volume rm $leftover >/dev/null 2>&1 || true
    # Anything labelled with the project that `down` did not take (a
    # container started outside compose on its network, a stray volume).
    local ids
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    ids=$(docker network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    [ -z "$ids" ] || docker network rm $ids >/dev/null 2>&1 || true
    ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
    [ -z "$ids" ] || docker volume rm $ids >/dev/null 2>&1 || true
    echo "[compose-test] cleaned up; total $((SECONDS)) s, exit $rc" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "[compose-test] compose tool: $COMPOSE_CMD; load balancer port $LB_PORT" >&2
start=$SECONDS
bash deploy/standins/build.sh
echo "[compose-test] stand-ins ready after $((SECONDS - start)) s" >&2
# The checks need PyYAML, which Debian's docker-compose brings along for
# the system Python.
python=python3
$python -c 'import yaml' 2>/dev/null || python=/usr/bin/python3
$python deploy/compose_test.py
