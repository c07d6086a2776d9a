# fastmatch's two jobs on a fresh machine:
#   make demo   set up, then match a built-in synthetic cluster
#   make test   set up, then lint, type-check and run every test
# Everything lives in .venv; `make clean` removes what the build made.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo test lint pytest bench bench-full system-deps debug-build dist clean \
        image image-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml setup.py src/fastmatch/_core.pxd $(wildcard src/fastmatch/*.pyx) \
          $(wildcard src/fastmatch/*.pxi) $(wildcard src/fastmatch/inputs/*.pyx) \
          $(wildcard src/fastmatch/inputs/*.pxd) | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,kube,report,dask]'
	touch $@

demo: $(STAMP)
	$(BIN)/fastmatch demo

system-deps:
	./scripts/system-deps

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src/fastmatch
	$(BIN)/cython-lint src/fastmatch/_core.pyx src/fastmatch/_core.pxd src/fastmatch/*.pxi \
	    src/fastmatch/_columns.pyx src/fastmatch/inputs/_fastcatalog.pyx \
	    src/fastmatch/inputs/_fastcaches.pyx src/fastmatch/inputs/_fastpods.pyx \
	    src/fastmatch/inputs/_slots.pxd bench/*.pyx
	$(BIN)/python -m mypy.stubtest fastmatch._core fastmatch._columns fastmatch.inputs._fastcatalog \
	    fastmatch.inputs._fastcaches fastmatch.inputs._fastpods
	$(BIN)/lint-imports

pytest: $(STAMP) system-deps
	$(BIN)/python -m pytest -q tests bench --benchmark-disable

test: lint pytest

# The timing suite (not run by `make test`; see bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m pytest bench -m "not registry" -p no:randomly --benchmark-only --benchmark-disable-gc --benchmark-columns=median,iqr,ops,rounds

# Rebuild the core with bounds, wraparound and None checks on (FASTMATCH_DEBUG).
debug-build: $(STAMP)
	FASTMATCH_DEBUG=1 $(BIN)/python setup.py build_ext --inplace --force

# The packages, in dist/: the sdist, and from it (unpacked, in an isolated environment from
# the package registries) the wheel, which auditwheel makes manylinux (the OpenMP runtime
# copied in, symbols stripped); docs/packaging.md says more.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist/built .
	$(BIN)/python -m auditwheel repair --strip -w dist dist/built/*.whl
	mv dist/built/*.tar.gz dist/
	rm -rf dist/built
	@ls -1 dist

# The container image, built offline on Debian bases made with mmdebstrap, tried (as its user,
# on a read-only root), pushed to a local registry and resolved from it by `fastmatch resolve`
# (scripts/image.sh; docs/install.md). About 4 minutes the first time, 1.5 to 3 once the
# bases are kept (in ~/.cache/fastmatch/image-bases, for a week).
image: $(STAMP)
	./scripts/image.sh all

image-smoke:
	./scripts/image.sh smoke
	./scripts/image.sh smoke-webhook

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/fastmatch/_core.cpp src/fastmatch/_core.html \
	    src/fastmatch/_columns.cpp src/fastmatch/_columns.html src/fastmatch/*.so \
	    src/fastmatch/inputs/_fast*.c src/fastmatch/inputs/_fast*.cpp \
	    src/fastmatch/inputs/_fast*.html src/fastmatch/inputs/*.so .benchmarks .hypothesis
