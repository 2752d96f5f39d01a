# Floodgate. `make help` lists the targets.
GO       ?= go
BIN      := bin/floodgate
# A count, not a duration: go1.26's fuzz coordinator can fail a target that found
# nothing with "context deadline exceeded" when a -fuzztime duration ends
# (go.dev/issue/75804, fixed in go1.27); a count budget has no deadline to race.
FUZZTIME ?= 50000x
export GOFLAGS ?= -buildvcs=false

S        ?= smoke

.PHONY: help build test vet unit fuzz smoke scenario bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build bin/floodgate
	$(GO) build -o $(BIN) ./cmd/floodgate

test: vet unit fuzz smoke ## everything CI runs: vet, tests with -race, a short fuzz run of every decoder, the smoke scenario and its gate

vet: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd deploy/k8s && $(GO) vet ./...

unit: ## unit and integration tests, with the race detector
	$(GO) test -race -count=1 -timeout 15m ./...
	cd bench/peers && $(GO) test -race -count=1 ./...
	cd deploy/k8s && $(GO) test -count=1 ./...

fuzz: ## run each fuzz target for FUZZTIME (default 50000x: executions)
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$dir $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$dir; \
	  done; done

# The smoke gate's bands are wide: a small run's figures move a lot between runs
# and machines, and its RSS and CPU per unit are mostly fixed process costs. They
# still catch a several-fold regression. (make gate S=<name> uses compare's defaults.)
SMOKEBANDS := -band push_p50=50%,1ms -band push_p99=100%,10ms -band push_p999=150%,25ms \
	-band rss_per_conn=25%,4KiB -band cpu_per_msg=50%,400us

smoke: build ## the smoke scenario with its gates, then compared with its baseline (scenarios/baselines/smoke.json)
	$(BIN) scenario run scenarios/smoke.yaml -out reports/out/smoke/ci
	$(BIN) compare $(SMOKEBANDS) scenarios/baselines/smoke.json reports/out/smoke/ci

# Network faults (partition, loss, bandwidth, blackhole) need nft, and a Redis backend
# needs redis-server (which also runs the sentinels: redis-server --sentinel): as root,
# what is missing is installed, as .ci/run does; otherwise the run says what is missing.
scenario: build ## run scenarios/$(S).yaml → reports/out/$(S)/<UTC time> and latest; exit 0 pass, 2 gate failed, 3 invalid, 1 harness error
	@if [ "$$(id -u)" = 0 ] && ! command -v nft >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing nftables (network faults need nft)"; \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends nftables; } || \
	  echo "could not install nftables: a scenario with network faults will fail its preflight"; fi
	@if [ "$$(id -u)" = 0 ] && ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing redis-server (Redis backends)"; \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } || \
	  echo "could not install redis-server: a scenario with a Redis backend will fail to start"; fi
	$(BIN) scenario run scenarios/$(S).yaml $(SCENARIOFLAGS)

bench: build ## reactor benchmark, floodgate vs netstd/gnet/nbio (~15 min, heavy) → reports/out/bench; BENCHFLAGS for a subset
	cd bench/peers && $(GO) build -o bin/peer ./cmd/peer
	$(BIN) bench -out reports/out/bench $(BENCHFLAGS)

clean: ## remove build and run outputs
	rm -rf bin reports/out

.PHONY: gate
gate: build ## run scenario S, then compare it with scenarios/baselines/S.json (exit 2 on a regression); COMPAREFLAGS for bands
	@test -n "$(S)" || { echo "usage: make gate S=<scenario>" >&2; exit 1; }
	@test -f scenarios/baselines/$(S).json || { echo "no baseline scenarios/baselines/$(S).json: scenarios/baselines/README.md says how to make one" >&2; exit 1; }
	@$(MAKE) --no-print-directory scenario S=$(S); rc=$$?; \
	  $(BIN) compare $(COMPAREFLAGS) scenarios/baselines/$(S).json reports/out/$(S)/latest; crc=$$?; \
	  if [ $$crc -ne 0 ]; then exit $$crc; fi; \
	  if [ $$rc -ne 0 ]; then echo "gate: make scenario S=$(S) failed (exit $$rc)" >&2; exit 2; fi
