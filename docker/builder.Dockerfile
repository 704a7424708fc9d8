# The build stage's image on machines with no registry (docker/build-base.sh makes it):
# the local Debian base, a C toolchain (ring, the linker), protoc (proto/build.rs) and the
# host's Rust toolchain, copied in by build-base.sh (no rustup inside).
ARG BASE_IMAGE=lisp-msx/debian:bookworm
FROM ${BASE_IMAGE}
ARG RUSTC_VERSION=unknown
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config protobuf-compiler ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY rust/ /usr/local/rust/
ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
RUN mkdir -p /usr/local/cargo && rustc -V && cargo -V && protoc --version
LABEL org.lisp-msx.rustc="${RUSTC_VERSION}" org.lisp-msx.build=builder
