# attnscale: one GNU Makefile for the library, the CLI, tests and benchmarks.
#
#   make              build build/libattnscale.a, build/attnscale and (with python3-config)
#                     the Python package in build/python (PYTHONPATH=build/python)
#   make run          install missing Debian packages, build, run the main job into out/
#   make test         install missing Debian packages, build, run every test (~1 min)
#   make check        the tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-long    long statistical runs (large n, many seeds)
#   make bench        benchmarks (bench/), CSV on stdout
#   make fuzz         libFuzzer targets (clang), FUZZ_SECONDS each (default 60); new inputs
#                     in BUILD/fuzz/new-*, merged into tests/fuzz/corpus with FUZZ_MERGE=1
#   make format       clang-format every C source
#   make clean
#
# Honours CC, CFLAGS, CPPFLAGS, LDFLAGS, LDLIBS. NO_OMP=1 builds without OpenMP,
# NATIVE=1 adds -march=native, WERROR=1 adds -Werror (CI).

CC      ?= cc
CFLAGS  ?= -O2 -g
BUILD   ?= build

WARN    := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wconversion
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(NATIVE),1)
WARN    += -march=native
endif
ifneq ($(NO_OMP),1)
OMP_OK  := $(shell printf 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1)
ifeq ($(OMP_OK),1)
OMPFLAGS := -fopenmp
endif
endif

BLAS_INC  := $(shell pkg-config --cflags-only-I openblas 2>/dev/null)
CAIRO_INC := $(shell pkg-config --cflags-only-I cairo 2>/dev/null)
ALL_CPPFLAGS := -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L $(BLAS_INC) $(CAIRO_INC) $(CPPFLAGS)
ALL_CFLAGS   := $(WARN) $(OMPFLAGS) $(CFLAGS)
LIBS         := -lcairo -lcjson -lopenblas -lm $(LDLIBS)
# binary128 (gcc's libquadmath, x86) gives the simplex tests a reference beyond long double.
QUAD_OK      := $(shell printf '__float128 x; int main(void){return 0;}' | $(CC) -x c - -lquadmath -o /dev/null 2>/dev/null && echo 1)
ifeq ($(QUAD_OK),1)
TEST_DEFS    := -DATS_HAVE_QUADMATH
TEST_QUAD    := -lquadmath
endif
TEST_LIBS    := $(LIBS) $(TEST_QUAD)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC  := $(sort $(wildcard tools/cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# Debian packages the build and the tests need (the set-up contract of DESIGN.md).
RUN_PKGS  := make gcc pkg-config libopenblas-dev libcairo2-dev libcjson-dev fonts-dejavu-core \
             python3-dev
# The tests also write .npy fixtures with NumPy and run scripts/dump_scores.py on PyTorch;
# the Python package's tests run under pytest (matplotlib: the examples/ script).
TEST_PKGS := $(RUN_PKGS) python3-numpy python3-torch python3-pytest python3-matplotlib
FUZZ_PKGS := clang libclang-rt-dev
BENCH_PKGS := python3-numpy python3-torch

.PHONY: all lib cli python deps test-deps run test check test-long bench fuzz format clean tests
all: lib cli python

lib: $(BUILD)/libattnscale.a
cli: $(BUILD)/attnscale

# Install what is missing with apt-get when root; otherwise print the exact command and stop.
deps:
	@PKGS="$(RUN_PKGS)" sh scripts/deps.sh
test-deps:
	@PKGS="$(TEST_PKGS)" sh scripts/deps.sh

# The git hash and flags go into a generated header that changes only when they do.
$(BUILD)/gen/buildinfo.h: FORCE
	@mkdir -p $(@D)
	@{ printf '#define ATS_GIT_HASH "%s"\n' "$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"; \
	   printf '#define ATS_BUILD_FLAGS "%s"\n' "$(CC) $(ALL_CFLAGS)"; } > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
FORCE:

$(BUILD)/obj/src/core/build_info.o: $(BUILD)/gen/buildinfo.h
$(BUILD)/obj/src/core/build_info.o: ALL_CPPFLAGS += -I$(BUILD)/gen

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libattnscale.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/attnscale: $(CLI_OBJ) $(BUILD)/libattnscale.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(CLI_OBJ) $(BUILD)/libattnscale.a $(LIBS) -o $@

$(BUILD)/tests/%: tests/%.c tests/test.h tests/cli_run.h $(BUILD)/libattnscale.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(TEST_DEFS) $(ALL_CFLAGS) $(LDFLAGS) $< $(BUILD)/libattnscale.a $(TEST_LIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libattnscale.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) $< $(BUILD)/libattnscale.a $(LIBS) -o $@

# ----------------------------------------------------------------------------
# The Python package (DESIGN.md, Python contract): python/attnscale/_ext.c linked with a
# position-independent copy of the library (build/pic; the CLI's objects stay non-PIC) into
# build/python/attnscale/, next to __init__.py. Debian's interpreter by default (the tests'
# NumPy and pytest are Debian's); PYTHON=... picks another.
PYTHON        ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
PYTHON_CONFIG ?= $(PYTHON)-config
PY_SUFFIX := $(shell $(PYTHON_CONFIG) --extension-suffix 2>/dev/null)
PY_INC    := $(patsubst -I%,-isystem %,$(shell $(PYTHON_CONFIG) --includes 2>/dev/null))
PIC_OBJ   := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
PY_EXT    := $(BUILD)/python/attnscale/_ext$(PY_SUFFIX)
PY_SRC    := $(sort $(wildcard python/attnscale/*.py))
PY_FILES  := $(PY_SRC:python/%=$(BUILD)/python/%)
PY_TEST   := $(BUILD)/tests/test_python

ifneq ($(PY_SUFFIX),)
python: $(PY_EXT) $(PY_FILES)
else
PY_TEST   :=
python:
	@echo "python: $(PYTHON_CONFIG) not found (Debian: apt-get install python3-dev): the Python package is not built"
endif

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(BUILD)/pic/src/core/build_info.o: $(BUILD)/gen/buildinfo.h
$(BUILD)/pic/src/core/build_info.o: ALL_CPPFLAGS += -I$(BUILD)/gen

$(BUILD)/pic/libattnscale.a: $(PIC_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pic/python/attnscale/_ext.o: python/attnscale/_ext.c include/attnscale.h
	@mkdir -p $(@D)
	$(CC) -Iinclude $(PY_INC) $(CPPFLAGS) $(ALL_CFLAGS) -fPIC -c $< -o $@

# --exclude-libs keeps the library's symbols inside the module (only PyInit__ext is exported).
$(PY_EXT): $(BUILD)/pic/python/attnscale/_ext.o $(BUILD)/pic/libattnscale.a
	@mkdir -p $(@D)
	$(CC) -shared $(ALL_CFLAGS) $(LDFLAGS) $< $(BUILD)/pic/libattnscale.a $(LIBS) \
	  -Wl,--exclude-libs,ALL -o $@

$(BUILD)/python/attnscale/%.py: python/attnscale/%.py
	@mkdir -p $(@D)
	cp $< $@

# make test counts the pytest results through this wrapper (tests/python/run.sh).
$(PY_TEST): tests/python/run.sh
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nexec sh "%s/tests/python/run.sh" "%s" "%s" "%s"\n' "$(CURDIR)" \
	  "$(abspath $(BUILD))" "$(PYTHON)" "$(CURDIR)" > $@
	@chmod +x $@

tests: all $(TEST_BIN) $(PY_TEST)

run: deps
	@$(MAKE) --no-print-directory all
	sh scripts/run.sh $(BUILD)/attnscale out

test: test-deps
	@$(MAKE) --no-print-directory tests
	@sh tests/run.sh $(BUILD)

SAN := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
check: test-deps
	@$(MAKE) --no-print-directory BUILD=build-check CFLAGS="$(SAN)" LDFLAGS="$(SAN)" tests
	@ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-check

test-long: test-deps
	@$(MAKE) --no-print-directory tests
	@ATS_TEST_LONG=1 sh tests/run.sh $(BUILD)

bench: deps
	@PKGS="$(BENCH_PKGS)" sh scripts/deps.sh
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done
	@sh bench/compare.sh $(BUILD)

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
fuzz: $(BUILD)/gen/buildinfo.h
	@PKGS="$(FUZZ_PKGS)" sh scripts/deps.sh
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRC); do \
	  t=$(BUILD)/fuzz/$$(basename $$f .c); \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined $(ALL_CPPFLAGS) \
	    $$f $(LIB_SRC) -I$(BUILD)/gen $(LIBS) -o $$t || exit 1; \
	  c=tests/fuzz/corpus/$$(basename $$f .c | sed 's/^fuzz_//'); \
	  n=$(BUILD)/fuzz/new-$$(basename $$c); mkdir -p $$c $$n; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$n $$c || exit 1; \
	  if [ -n "$(FUZZ_MERGE)" ]; then $$t -merge=1 $$c $$n || exit 1; fi; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-check

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(PIC_OBJ:.o=.d)
