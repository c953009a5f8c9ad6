# A Shoal node in an image with nothing else in it.
#
# No base image can be pulled on the build machines, so this is FROM scratch
# around a statically linked binary built on the host first:
#
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
#     --target x86_64-unknown-linux-gnu -p shoal-node --bin shoal-node
#   docker build -t shoal-node:local .
#
# (testnet/compose-smoke.sh does both.) A scratch image has no shell and no
# curl: the healthcheck is `shoal-node health`, a bare HTTP GET of the
# node's own /v1/health.
#
# The node runs as root inside the container: a scratch image has no user
# database and a fresh named volume is owned by root. It only writes /data.
FROM scratch

COPY target/x86_64-unknown-linux-gnu/release/shoal-node /shoal-node

# Defaults for a container: data in the volume, libp2p on TCP 4001 (no QUIC
# so that every transport works the same under pnet), API on all
# interfaces of the container. Publish the API only on the host's loopback
# unless an API token is set.
ENV SHOAL_DATA_DIR=/data \
    SHOAL_LISTEN=/ip4/0.0.0.0/tcp/4001 \
    SHOAL_API=0.0.0.0:7070 \
    RUST_LOG=info

VOLUME ["/data"]
EXPOSE 4001/tcp 7070/tcp

HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/shoal-node", "health"]

ENTRYPOINT ["/shoal-node"]
CMD ["run"]
