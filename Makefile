# The two commands: `make run` starts crid with its built-in defaults, `make test`
# runs the whole test suite. Both install their Debian dependencies first.
BAZEL ?= bazel
ARGS ?=

.PHONY: deps test-deps build run test lint clean critest

deps:
	tools/install-deps.sh build

test-deps:
	tools/install-deps.sh test

build: deps
	$(BAZEL) build //:crid

run: build
	exec ./bazel-bin/crid $(ARGS)

test: test-deps
	tools/run-tests.sh

critest: test-deps
	tests/k8s/critest.sh

lint: test-deps
	$(BAZEL) build //...
	tools/lint.sh

clean:
	$(BAZEL) clean
