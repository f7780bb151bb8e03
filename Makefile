# The two commands: `make run` starts crid with its built-in defaults, `make test`
# runs the whole test suite. Both install their Debian dependencies first.
BAZEL ?= bazel
ARGS ?=

.PHONY: deps test-deps build run test lint clean critest e2e-node e2e-node-compare
.PHONY: release-build install uninstall deb

deps:
	tools/install-deps.sh build

test-deps:
	tools/install-deps.sh test

# The release build (optimised, stripped); tests build their own debug and
# sanitizer configurations. bazel-bin follows whichever build ran last, so
# `run` asks Bazel where the release outputs are.
build: release-build

run: build
	exec "$$($(BAZEL) info $(CRID_RELEASE_FLAGS) bazel-bin)/crid" $(ARGS)

# Installing: the release binaries (--config=release: optimised, stripped) with
# crid.service, an example /etc/crid/crid.json and /etc/crictl.yaml (kept when
# present), the docs.
# `make install PREFIX=/usr/local DESTDIR=`; `make deb` writes dist/crid_<VERSION>_<arch>.deb.
PREFIX ?= /usr/local
DESTDIR ?=
CRID_RELEASE_FLAGS ?= --config=release

release-build: deps
	$(BAZEL) build $(CRID_RELEASE_FLAGS) //:crid //shim:crid-shim //pause:crid-pause

install: release-build
	packaging/install.sh --keep-config --prefix "$(PREFIX)" --destdir "$(DESTDIR)" \
	  --bin-dir "$$($(BAZEL) info $(CRID_RELEASE_FLAGS) bazel-bin)"
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

uninstall:
	packaging/install.sh --uninstall --prefix "$(PREFIX)" --destdir "$(DESTDIR)"
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

deb: release-build
	BAZEL="$(BAZEL)" CRID_RELEASE_FLAGS="$(CRID_RELEASE_FLAGS)" packaging/build-deb.sh \
	  --bin-dir "$$($(BAZEL) info $(CRID_RELEASE_FLAGS) bazel-bin)"

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
