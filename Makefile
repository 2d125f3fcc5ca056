# Convenience front end over CMake. `make` builds build/facegraph and
# build/libfacegraph.{a,so}; `make check` runs the whole test suite.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all check clean asan

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFG_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)

check: all asan
	tests/run_all.sh

clean:
	rm -rf $(BUILD) build-asan
