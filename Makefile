# rida: see README.md. Every target installs the system tools it needs first.
GO ?= go
BIN := bin/rida
PKGS := ./...

.PHONY: all build deps test demo bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/rida

deps:
	./scripts/install-deps

test: deps
	$(GO) test -count=1 -timeout 30m $(PKGS)

# DEMO_FLAGS=--keep-serving leaves the server up to browse the build pages.
DEMO_FLAGS ?=
demo: deps build
	./$(BIN) demo $(DEMO_FLAGS)

# Benchmarks: the figures in docs/benchmarks.md come from this command.
bench: deps
	$(GO) test -run '^$$' -bench . -count 1 -timeout 60m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin
