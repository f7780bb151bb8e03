# The two commands: `make run` starts crid with its built-in defaults, `make test`
# runs the whole test suite. Both install their Debian dependencies first.
BAZEL ?= bazel
ARGS ?=

.PHONY: deps test-deps build run test lint clean critest e2e-node e2e-node-compare

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

# Kubernetes' node conformance suite against crid (long: see docs/conformance.md).
e2e-node: test-deps
	tests/k8s/e2e_node.sh $(ARGS)

# The suite against crid and against Debian's containerd, then both side by side.
e2e-node-compare: test-deps
	-tests/k8s/e2e_node.sh $(ARGS)
	-tests/k8s/e2e_node.sh --runtime containerd $(ARGS)
	tests/k8s/e2e_node_report.py --table /var/cache/crid-k8s/results/e2e-node-crid/report.json \
	  /var/cache/crid-k8s/results/e2e-node-containerd/report.json

lint: test-deps
	$(BAZEL) build //...
	tools/lint.sh

clean:
	$(BAZEL) clean
