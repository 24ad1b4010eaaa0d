# masqd's image: a static binary on distroless, nothing else. No shell, no
# iptables, no nft: masqd speaks netlink itself. Build with `make image`.

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

# The root variant, not :nonroot: Kubernetes gives a non-root process added
# capabilities only in its bounding set, and masqd needs CAP_NET_ADMIN
# effective to program nftables in the host network namespace. The DaemonSet
# drops every other capability.
FROM gcr.io/distroless/static-debian12
ARG VERSION=dev
LABEL org.opencontainers.image.title="masqd" \
      org.opencontainers.image.description="nftables-native ip-masq-agent" \
      org.opencontainers.image.source="https://github.com/masqd/masqd" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/masqd /masqd
USER 0:0
ENTRYPOINT ["/masqd"]
