# rime: `make test` is what CI runs; `make demo` plans every example.
GO ?= go
PKGS := ./...

.PHONY: build test bench lint demo fuzz golden verify-long

build:
	$(GO) build -o bin/rime ./cmd/rime

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)

# Speed targets live here, never in unit tests: the machines are shared
# and noisy, so the benchmarks print ratios measured in the same run.
bench:
	$(GO) test ./bench/ -run '^$$' -bench . -benchtime 3x

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Plans every example; the ledger example is refused on purpose (exit 3).
demo: build
	@for d in examples/*/; do echo "== $$d"; ./bin/rime plan $$d/app.cue || true; done

# Every fuzz target in the tree, FUZZTIME each (go test fuzzes one
# target per run).
FUZZTIME ?= 30s
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/p' $$f); do \
			echo "== $$pkg $$t"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; \
	done

# Regenerates the golden plans and explanations after a deliberate change.
golden:
	$(GO) test ./internal/cli/ -run TestGolden -update

# rime verify over every implemented stack (collabdoc's document: raft;
# cursors: an eventual map; comments: a causal, durable log), 100
# schedules each (about half an hour per stack on two cores). make test
# runs a short verify only.
SCHEDULES ?= 100
verify-long: build
	./bin/rime verify examples/collabdoc --schedules $(SCHEDULES) --duration 10s
