# facegraph's container image, built by docker-compose.yml: the release binary and the local
# engine's models, fetched and verified at build time so that the container needs no network.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY cypher cypher
RUN cargo build --release --locked
RUN target/release/facegraph --models-dir /opt/facegraph/models models fetch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/facegraph --create-home facegraph
COPY --from=build /src/target/release/facegraph /usr/local/bin/facegraph
COPY --from=build /opt/facegraph/models /opt/facegraph/models
USER facegraph
ENV FACEGRAPH_DATA_DIR=/var/lib/facegraph FACEGRAPH_MODELS_DIR=/opt/facegraph/models
EXPOSE 8080
ENTRYPOINT ["facegraph"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
