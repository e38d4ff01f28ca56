# Build stage: the Rust toolchain plus a C compiler and libc headers for the
# bundled C codecs (mozjpeg, libwebp, built by the `cc` crate: no make, no
# pkg-config, no C++). Dependencies are built in their own layer so that a
# source change does not rebuild them. No `# syntax=` line: it would make
# BuildKit pull a frontend image, which fails offline and adds nothing here.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The workspace's test-support crate is only a dev-dependency: its manifest
# (with an empty library) is enough for cargo to load the workspace, and
# only the img-proxy package is built.
COPY Cargo.toml Cargo.lock ./
COPY test-support/Cargo.toml test-support/
# Our stand-in for a dependency's clock crate ([patch.crates-io]).
COPY patches ./patches
RUN mkdir src test-support/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs test-support/src/lib.rs \
 && cargo build --release --locked --package img-proxy \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --package img-proxy

# Runtime stage: slim Debian with CA certificates for https origins, and an
# unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin imgproxy
COPY --from=build /src/target/release/img-proxy /usr/local/bin/img-proxy
# The workers' CACHE_DIR: a volume mounted here starts with this owner.
RUN install -d -o 10001 -g 10001 /var/cache/img-proxy
USER 10001:10001
ENV HTTP_ADDR=0.0.0.0:8080 \
    GOSSIP_ADDR=0.0.0.0:7946
EXPOSE 8080/tcp 7946/udp
# Healthy once the node can take traffic (GET /ready: a worker has joined,
# a gateway also sees a worker); the binary probes itself, no curl needed.
# If you change HTTP_ADDR's port, override this (compose: `healthcheck:`).
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/img-proxy", "probe", "--timeout", "2s", "http://127.0.0.1:8080/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/img-proxy"]
CMD ["standalone"]
