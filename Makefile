# cnpgen — see README.md. Everything here runs from a fresh clone with only Go installed.

SHELL     := /bin/bash
GO        ?= go
BIN       := bin/cnpgen
DEMO_DIR  := demo-out
DEMO_FLOWS ?= 20000
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build demo test check bench fmt clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cnpgen

# learn -> synth -> verify -> diff on bundled demo data.
demo: build
	@mkdir -p $(DEMO_DIR)
	$(BIN) demo-flows --seed 1 --flows $(DEMO_FLOWS) -o $(DEMO_DIR)/flows.json
	rm -f $(DEMO_DIR)/graph.json
	$(BIN) learn --input-file $(DEMO_DIR)/flows.json --graph $(DEMO_DIR)/graph.json
	$(BIN) synth --graph $(DEMO_DIR)/graph.json --out-dir $(DEMO_DIR)/policies --prune
	@echo
	@echo "# every flow the cluster forwarded is allowed by the synthesised policies:"
	$(BIN) verify --policies $(DEMO_DIR)/policies --input-file $(DEMO_DIR)/flows.json --not --verdict DROPPED
	@echo
	@echo "# a hand-written 'live' policy set against the same observations (exit 1: findings):"
	$(BIN) diff --policies testdata/demo/live-policies.yaml --graph $(DEMO_DIR)/graph.json | tee $(DEMO_DIR)/diff.txt; test $${PIPESTATUS[0]} -eq 1
	@echo
	@echo "demo output:"
	@echo "  flows:    $(DEMO_DIR)/flows.json  (hubble observe -o jsonpb lines)"
	@echo "  graph:    $(DEMO_DIR)/graph.json  (what cnpgen learned: one edge per line)"
	@echo "  policies: $(DEMO_DIR)/policies/   (one CiliumNetworkPolicy per workload; kubectl apply -k $(DEMO_DIR)/policies)"
	@echo "  diff:     $(DEMO_DIR)/diff.txt    (cnpgen diff of testdata/demo/live-policies.yaml: one denied-but-needed path, one unused rule)"

# Every test, integration tests included.
test:
	$(GO) test ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	$(GO) test -race -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(DEMO_DIR)
