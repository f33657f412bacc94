# Multi-stage build of the projector. Build: docker build -t projector .
# Run:   docker run --rm -p 8080:8080 -e PROJECTOR_LISTEN=0.0.0.0:8080 projector serve
FROM rust:1.95-bookworm AS build
# rdkafka-sys builds librdkafka from source with make and the C toolchain this
# image has, against the system OpenSSL (libssl-dev is in rust:bookworm).
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p projector \
 && cp target/release/projector /projector

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /projector /usr/local/bin/projector
# Where --snapshot-dir points in docker-compose.yml; a named volume mounted
# there takes this owner, so the unprivileged user can write its snapshot.
RUN mkdir -p /var/lib/projector && chown 65532:65532 /var/lib/projector
USER 65532:65532
EXPOSE 8080
ENV PROJECTOR_LISTEN=0.0.0.0:8080
ENTRYPOINT ["projector"]
CMD ["serve"]
