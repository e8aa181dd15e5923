# hookrelay: one image for every role (serve | api | worker | publish | queue | recover …).
#
# Dependencies are built in a layer of their own, from the manifests and the lock file only,
# so a change to hookrelay's code rebuilds hookrelay and nothing else.
FROM rust:1-bookworm AS build
WORKDIR /src

# 1. Manifests, lock file, and an empty stand-in for every crate's sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/hookrelay/Cargo.toml crates/hookrelay/
COPY crates/hookrelay-core/Cargo.toml crates/hookrelay-core/
COPY crates/hookrelay-queue/Cargo.toml crates/hookrelay-queue/
COPY crates/hookrelay-producer/Cargo.toml crates/hookrelay-producer/
COPY crates/hookrelay-worker/Cargo.toml crates/hookrelay-worker/
COPY crates/hookrelay-testkit/Cargo.toml crates/hookrelay-testkit/
COPY crates/hookrelay-bench/Cargo.toml crates/hookrelay-bench/
COPY tests/Cargo.toml tests/
RUN for c in hookrelay-core hookrelay-queue hookrelay-producer hookrelay-worker hookrelay-testkit; do \
      mkdir -p "crates/$c/src" && touch "crates/$c/src/lib.rs"; done \
    && mkdir -p tests/src crates/hookrelay/src crates/hookrelay-bench/src \
    && touch tests/src/lib.rs \
    && echo 'fn main() {}' > crates/hookrelay/src/main.rs \
    && echo 'fn main() {}' > crates/hookrelay-bench/src/main.rs \
    && cargo build --release --locked --bin hookrelay

# 2. The real sources; only hookrelay's own crates are compiled again.
COPY . .
RUN find crates tests -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin hookrelay \
    && strip target/release/hookrelay

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 hookrelay
COPY --from=build /src/target/release/hookrelay /usr/local/bin/hookrelay
USER hookrelay
# The API (serve, api) and, when HOOKRELAY_METRICS_LISTEN is set, a process's own metrics.
EXPOSE 8080 9090
ENTRYPOINT ["hookrelay"]
CMD ["serve"]
