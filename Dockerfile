# syntax=docker/dockerfile:1
#
# messages-service image: Swift 6.3 build stage -> small Ubuntu runtime.
#   docker build -t messages-service .
#   docker run --rm messages-service migrate        # apply migrations, exit
#   docker run --rm -p 8080:8080 messages-service   # serve (the default)
# Configuration comes from environment variables (see docs/configuration.md).

############################ build ############################
FROM swift:6.3-noble AS build

# Headers and pkg-config files of the C client libraries the service wraps.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq-dev libhiredis-dev librabbitmq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first: this layer stays cached while only sources change.
COPY Package.swift ./
RUN swift package resolve

COPY Sources ./Sources
COPY Tests ./Tests

# --static-swift-stdlib links the Swift runtime (and Foundation, if used) into
# the binary, so the runtime image needs no Swift toolchain libraries.
RUN swift build -c release --product messages-service --static-swift-stdlib \
 && mkdir -p /staging \
 && cp "$(swift build -c release --show-bin-path)/messages-service" /staging/ \
 && cp -R "$(swift build -c release --show-bin-path)/messages-service_MessagesService.resources" /staging/ \
 && echo "shared libraries needed by the binary:" && ldd /staging/messages-service

############################ runtime ############################
FROM ubuntu:noble

# Only what the binary links against (libpq, hiredis, rabbitmq-c, and libcurl for
# Foundation's URLSession, which posts alerts; their own dependencies such as
# libssl come along), CA roots for TLS, and time zones.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 libhiredis1.1.0 librabbitmq4 libcurl4t64 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 messages \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin messages

WORKDIR /app
# The resource bundle (it holds openapi.yaml) must sit next to the binary.
COPY --from=build /staging/ /app/

# Fail the image build if any shared library of the binary is missing.
RUN ! ldd /app/messages-service | grep -F 'not found'

# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001

ENV HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080

ENTRYPOINT ["/app/messages-service"]
CMD ["serve"]
