# syntax=docker/dockerfile:1
# Build stage: the Rust toolchain plus gcc/make for the bundled C codecs
# (mozjpeg, libwebp). Dependencies are built in their own layer so that a
# source change does not rebuild them.
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

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
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/img-proxy"]
CMD ["standalone"]
