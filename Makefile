# masqd — see README.md. Targets call small scripts under hack/.
.PHONY: all build image memory test unit e2e demo verify fuzz bench bench-quick soak clean

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export VERSION

all: build

build: ## bin/masqd
	hack/build.sh

test: ## every test of the root, bench/ and deploy/ modules under -race (kernel tests need root; they skip visibly otherwise)
	hack/test.sh

unit: ## pure tests only: no namespaces, no root
	go test -short -count=1 ./internal/...

e2e: build ## end-to-end tests against bin/masqd in throw-away namespaces
	MASQD_BIN=$(CURDIR)/bin/masqd go test -count=1 -v ./test/e2e/

demo: build ## masqd on its default config in throw-away namespaces, with real traffic
	hack/demo.sh

verify: ## gofmt, go vet, staticcheck (pinned), over all three modules
	hack/verify.sh

fuzz: ## run every fuzz target for FUZZTIME (default 30s each)
	hack/fuzz.sh

soak: build ## long reliability runs: traffic soak for SOAK (10m), kill -9, fault and differential rounds (ROUNDS=100)
	hack/soak.sh

clean:
	rm -rf bin dist

bench: build ## every benchmark, as root in throw-away namespaces (≤ 15 min): docs/benchmarks.md, docs/bench-apply.svg
	bench/run.sh

bench-quick: build ## the benchmarks in under two minutes, fewer repetitions
	bench/run.sh -quick

memory: ## the agent's peak memory in its container at 10,000, 100,000 and 300,000 CIDRs (MEMORY_CIDRS), as root
	hack/memory.sh

image: build ## dist/masqd-oci (OCI layout) and dist/masqd-image.tar (docker load): FROM scratch, no container engine, no registry
	hack/image.sh
