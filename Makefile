# moetrain: every target installs what is missing first (tools/bootstrap.sh), then builds.
#   make demo    build, then preprocess Tiny Shakespeare, train a tiny PR-MoE GPT, show its experts, sample
#   make test    build and run the whole test suite (CTest)
#   make bench   build and run the kernel benchmarks
#   make build   configure and build into $(BUILD)
#   make install build, then install into $(PREFIX): bin/moetrain, share/moetrain/{assets,configs},
#                share/doc/moetrain (= cmake --install $(BUILD) --prefix $(PREFIX); DESTDIR is honoured)
# Options: BUILD=build-dir  JOBS=n  CMAKE_FLAGS="-DMOETRAIN_NATIVE=OFF ..."  PREFIX=/usr/local
MAKEFLAGS += --no-print-directory
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all bootstrap configure build test demo bench install format clean

all: build

bootstrap:
	@bash tools/bootstrap.sh

configure: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@MOETRAIN_BIN=$(BUILD)/bin/moetrain bash tools/demo.sh

bench: build
	@$(BUILD)/bin/moetrain bench ops

install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

format:
	@git ls-files '*.h' '*.cpp' '*.cu' '*.cuh' | xargs clang-format -i

clean:
	@rm -rf $(BUILD) $(BUILD).configure.log
