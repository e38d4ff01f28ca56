#!/usr/bin/env bash
# Builds local stand-ins for the images that the Dockerfile and the compose
# files name, for machines that cannot pull them (no registry). An image
# already present under its name is left alone, so with a registry you
# `docker-compose pull` / `docker pull` first and nothing is built here;
# without one, the first run builds them and later runs reuse them.
#
#   debian:*-slim     a Debian root from `debootstrap --variant=minbase`,
#                     imported with `docker import`
#   rust:*            that root plus this machine's installed Rust toolchain
#                     (checked to be the tag's version), gcc and libc6-dev
#                     as in the official image, and the CA certificates
#                     this machine trusts (cargo
#                     inside the build may reach crates.io through a TLS
#                     interceptor that only those certificates vouch for)
#   nginx:*           that root plus Debian's nginx
#   prom/prometheus:* that root plus Debian's prometheus
#
# The stand-ins answer to the same paths and entry points as the official
# images for everything our Dockerfile and compose files use. Names that
# none of these cover (grafana) are only reported: the test never starts
# them.
#
# Usage: deploy/standins/build.sh [IMAGE...]   (default: every image named
# by ./Dockerfile and ./docker-compose.yml)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/standins

log() { printf '[standins] %s\n' "$*" >&2; }

# Temporary roots and build contexts, removed on any exit (a failed build
# included).
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

# Every image name the Dockerfile (FROM lines, not stage names) and the
# compose file (image: lines, not our own img-proxy) refer to.
named_images() {
    awk 'toupper($1) == "FROM" { print $2 }' Dockerfile
    sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]#]*\).*/\1/p' docker-compose.yml |
        grep -v '^img-proxy'
}

# Runs a command with its output kept aside, shown only if it fails.
quietly() {
    local out
    out=$(mktemp /tmp/standin-log.XXXXXX)
    if "$@" >"$out" 2>&1; then
        rm -f "$out"
    else
        tail -30 "$out" >&2
        rm -f "$out"
        return 1
    fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The one Debian root every stand-in starts from.
debian_root() {
    local name=$1 suite
    suite=${name#debian:}
    suite=${suite%-slim}
    need_tool debootstrap
    local root
    root=$(mktemp -d /tmp/standin-root.XXXXXX)
    scratch+=("$root" "$root.log")
    log "debootstrap --variant=minbase $suite (a few minutes)"
    debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian >"$root.log" 2>&1 || {
        tail -20 "$root.log" >&2
        rm -f "$root.log"
        return 1
    }
    rm -f "$root.log"
    # What the official slim image trims: package lists, caches, docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/*
    # As in the official image: apt keeps no package caches or downloaded
    # .debs in image layers (without this, an `apt-get install` layer
    # carries ~90 MB of /var/cache/apt/*.bin).
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    # Daemons that packages install must not try to start during a build.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod +x "$root/usr/sbin/policy-rc.d"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$name" >/dev/null
    log "built $name"
}

need_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $1 from Debian's packages"
    apt-get install -y -qq "$1" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y -qq "$1" >/dev/null
    }
}

base_image() {
    have_image debian:bookworm-slim || debian_root debian:bookworm-slim
}

# rust:1.95-slim-bookworm and the like: the host toolchain of that version.
rust_image() {
    local name=$1 version toolchain
    version=${name#rust:}
    version=${version%%-*}
    base_image
    toolchain=$(rustc --print sysroot)
    local have
    have=$("$toolchain/bin/rustc" --version | awk '{print $2}')
    case "$have" in
    "$version" | "$version".*) ;;
    *)
        log "$name needs Rust $version, this machine has $have"
        return 1
        ;;
    esac
    log "building $name from the host toolchain ($toolchain)"
    local ctx
    ctx=$(mktemp -d /tmp/standin-rust.XXXXXX)
    scratch+=("$ctx")
    cp "$here/rust.Dockerfile" "$ctx/Dockerfile"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.crt"
    # The toolchain goes in as part of the build context, without its docs.
    tar -C "$ctx" -cf - Dockerfile host-ca-bundle.crt \
        -C "$toolchain" --transform 's,^\(bin\|lib\|libexec\|etc\)\(/\|$\),toolchain/\1\2,' bin lib libexec etc |
        quietly docker build --build-arg "RUST_VERSION=$have" -t "$name" -
    log "built $name"
}

# nginx:* and prom/prometheus:*: Debian's package on the stand-in root.
package_image() {
    local name=$1 dockerfile=$2
    base_image
    log "building $name from Debian's package"
    quietly docker build -t "$name" - <"$here/$dockerfile"
    log "built $name"
}

main() {
    local images=("$@") name
    [ ${#images[@]} -gt 0 ] || mapfile -t images < <(named_images | sort -u)
    for name in "${images[@]}"; do
        have_image "$name" && continue
        case "$name" in
        debian:*) debian_root "$name" ;;
        rust:*) rust_image "$name" ;;
        nginx:*) package_image "$name" nginx.Dockerfile ;;
        prom/prometheus:*) package_image "$name" prometheus.Dockerfile ;;
        *) log "no stand-in for $name (not needed by the test)" ;;
        esac
    done
}

main "$@"
