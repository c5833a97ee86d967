# snappipe — see README.md. `make demo` and `make test` are all a fresh
# machine needs (Go 1.26 from go.mod; modules come from the Go proxy).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin

.PHONY: all build demo test test-short lint vet fmt-check tidy-check sample bench bench-go chaos fuzz mutation clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/snappipe ./cmd/snappipe
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/qdrant-emulator ./cmd/qdrant-emulator
	$(GO) build -trimpath -o $(BIN)/gensample ./cmd/gensample

# Starts the emulator on free ports, applies configs/sample.yaml, shows the
# snapshot file, stops the emulator.
demo: build
	bash scripts/demo.sh

# Every test, with the race detector. Tests that need ../shared/fixtures skip
# (saying so) when it is absent; tests against a real Qdrant run only when
# SNAPPIPE_IT_QDRANT_URL is set.
test: vet fmt-check
	$(GO) test -race -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy-check:
	$(GO) mod tidy -diff

lint: vet fmt-check tidy-check

# Regenerates the shipped sample data (deterministic: no diff expected).
sample:
	$(GO) run ./cmd/gensample -rows 2000 -out testdata/sample

clean:
	rm -rf $(BIN) snapshots configs/.snappipe .cache

# The kill-and-resume harness with 100 seeds (make test runs 10).
chaos:
	$(GO) test -count=1 -timeout 90m ./internal/chaos -seeds=100 -rows=20000 -hostile-seeds=21 -v

# End-to-end benchmarks (generates 100k- and 1M-row shards once into
# .cache/bench, ~5.5 GB), then the Go micro-benchmarks. Figures and the
# machine they were measured on: BENCHMARKS.md.
BENCH_SIZES ?= 100000,1000000
bench: build
	$(GO) build -o $(BIN)/bench ./cmd/bench
	$(BIN)/bench -sizes $(BENCH_SIZES)
	$(MAKE) bench-go

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/npy ./internal/pq ./internal/wire ./stages/batch

# Runs each fuzz target for a while.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 60s ./pipeline/config
	$(GO) test -run '^$$' -fuzz FuzzReadHeader -fuzztime 60s ./internal/npy
	$(GO) test -run '^$$' -fuzz FuzzOpen -fuzztime 60s ./internal/pq
	$(GO) test -run '^$$' -fuzz FuzzRangeReader -fuzztime 60s ./internal/httpra
	$(GO) test -run '^$$' -fuzz FuzzFormats -fuzztime 60s ./formats

# Mutation testing (gremlins) over pipeline/, stages/ and the readers, each
# package against its own tests. Score and triaged survivors: MUTATION.md.
mutation:
	bash scripts/mutation.sh
