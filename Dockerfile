# hookrelay: one image for every role (serve | api | worker | publish).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin hookrelay

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 hookrelay
COPY --from=build /src/target/release/hookrelay /usr/local/bin/hookrelay
USER hookrelay
ENTRYPOINT ["hookrelay"]
CMD ["serve"]
