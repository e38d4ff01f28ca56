# Stand-in for the official rust:<version>-slim-bookworm image, built by
# deploy/standins/build.sh from the stand-in Debian root and this machine's
# Rust toolchain (sent as the build context). Same layout and environment
# as the official image: RUSTUP_HOME, CARGO_HOME, cargo on the PATH.
FROM debian:bookworm-slim
ARG RUST_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# The CA certificates the host trusts (a TLS-intercepting proxy's among
# them), so that cargo inside a build can reach crates.io as the host does.
COPY host-ca-bundle.crt /usr/local/share/ca-certificates/host-ca-bundle.crt
RUN update-ca-certificates >/dev/null
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_VERSION}
COPY toolchain /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin \
 && for tool in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt; do \
      ln -s /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu/bin/$tool /usr/local/cargo/bin/$tool; \
    done \
 && cargo --version && rustc --version
