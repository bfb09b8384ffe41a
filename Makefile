# kappa — the two commands are `make run` and `make test`.

SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

GO      ?= go
BIN     := bin/kappa
RATE    ?= 5000/s

.PHONY: all build run test test-deps bench fuzz lint clean web screenshots

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kappa

## run: build and start the all-in-one system with synthetic load
run: build
	./$(BIN) up --generate $(RATE) --fan-zones --similar --dp --top-k --top-k-artist-songs --sink-dir ./lake

## test: formatting, vet, the concurrent packages under the race detector,
## and every test (unit, fuzz seeds, e2e)
## (on failure, the failing tests' own messages are repeated at the end:
## the e2e tests print the processes' logs after them)
test: test-deps lint | bin
	$(GO) test -race -count=1 -timeout 10m ./topology/ ./state/ ./serve/... ./keys/ ./cluster/ ./control/ ./replay/ ./catalog/ ./processors/... ./windows/ ./sinks/... 2>&1 | tee bin/test-race.txt || { $(FAILURES) bin/test-race.txt; exit 1; }
	$(GO) test -count=1 -timeout 25m ./... 2>&1 | tee bin/test.txt || { $(FAILURES) bin/test.txt; exit 1; }

# FAILURES prints the failure lines of a go test output: FAIL lines,
# panics and the tests' file:line messages, without the logs they quote.
FAILURES = echo "=== failures:"; grep -E '^\s*(--- FAIL|FAIL|panic:)|^\s+\w+_test\.go:[0-9]+: ' 

## test-deps: install what the tests need and this machine lacks (Debian
## packages through apt-get, npm packages from the committed lockfiles)
test-deps:
	@scripts/test-deps.sh

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy needed:"; $(GO) mod tidy -diff; exit 1; }

## bench: the benchmark suite (a few minutes): prints one table and writes it
## into docs/benchmarks.md with the date, the machine and this command
bench: | bin
	$(GO) test -run '^$$' -bench . -benchmem ./events/ ./state/ ./topology/ ./processors/... ./generate/ ./windows/ ./lsh/ ./keys/ ./sinks/... | tee bin/bench-micro.txt
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./e2e/ | tee bin/bench-e2e.txt
	$(GO) run ./cmd/benchreport -cmd "make bench" -doc docs/benchmarks.md bin/bench-micro.txt bin/bench-e2e.txt

bin:
	mkdir -p bin

## web: rebuild the dashboards' bundle (web/dist, committed and embedded;
## a test fails when it is not the build of web/src)
web: test-deps
	cd web && npm run --silent build

## screenshots: the README's screenshots of each dashboard, made by the
## browser tests against generated data
screenshots: test-deps
	KAPPA_SCREENSHOTS=1 $(GO) test -count=1 -run '^TestDashboards$$' ./e2e/

## fuzz: run each decoder fuzzer, and the HTTP routes' fuzzer, for a minute
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeListen$$' -fuzztime 60s ./events/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBinary$$' -fuzztime 60s ./events/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalBinary$$' -fuzztime 60s ./windows/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime 60s ./processors/fans/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFeature$$' -fuzztime 60s ./events/
	$(GO) test -run '^$$' -fuzz '^FuzzStage2Records$$' -fuzztime 60s ./processors/registry/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./catalog/
	$(GO) test -run '^$$' -fuzz '^FuzzApply$$' -fuzztime 60s ./control/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 60s ./cluster/
	$(GO) test -run '^$$' -fuzz '^FuzzRoutes$$' -fuzztime 60s ./serve/

clean:
	rm -rf bin kappa-data
