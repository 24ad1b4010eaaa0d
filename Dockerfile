# masqd's image for those who build with Docker: `docker build .`. `make image`
# builds the same image without Docker (image/, go-containerregistry);
# image/dockerfile_test.go holds the two to the same files, entrypoint, user
# and labels.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/masqd ./cmd/masqd

# FROM scratch: the static binary and nothing else. masqd needs no libc
# (static), no shell (it execs nothing), no CA bundle (netlink and local HTTP
# only) and no tzdata (it logs in UTC). Root, not a numbered user: Kubernetes
# gives a non-root process added capabilities only in its bounding set, and
# masqd needs CAP_NET_ADMIN effective. The DaemonSet drops every other one.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="masqd" \
      org.opencontainers.image.description="nftables-native ip-masq-agent" \
      org.opencontainers.image.source="https://github.com/masqd/masqd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build --chmod=0755 /out/masqd /masqd
USER 0:0
ENTRYPOINT ["/masqd"]
