# Dockerfile — the postdeploy programs in a small Debian 12 image.
#   docker build -t postdeploy .
#   docker run --rm postdeploy -c /etc/postdeploy/postdeploy.ini   (the reactor)
#   docker run --rm --entrypoint postdeploy postdeploy report ...   (the CLI)
# compose.yaml runs it next to a Kafka broker.

# ---- build: compilers and the -dev packages
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      librdkafka-dev libavro-dev libsqlite3-dev libjansson-dev libssl-dev \
      libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /tmp/build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPD_TESTS=OFF \
          -DCMAKE_INSTALL_PREFIX=/usr/local \
 && cmake --build /tmp/build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /tmp/build --strip

# ---- runtime: the shared libraries only
FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libavro23 libsqlite3-0 libjansson4 libssl3 libmicrohttpd12 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/postdeploy --create-home --shell /usr/sbin/nologin postdeploy
COPY --from=build /out/usr/local/ /usr/local/
# The reactor's SQLite state lives here (a volume in compose.yaml).
WORKDIR /var/lib/postdeploy
USER postdeploy
ENTRYPOINT ["postdeploy-reactor"]
