# mnv3 — plain Makefile for the C library, tests, examples and benchmark.
#
#   make                         static + shared library, tests, examples, bench
#   make test                    build and run the C test suite
#   make bench                   C-only benchmark of the built-in architectures
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make CROSS=aarch64-linux-gnu-          cross build (see docs/cross-compiling.md)
#   make THREADS=openmp|pthread|none       threading backend (default: openmp when available)
#   make SANITIZE=1                        ASan + UBSan build in build-sanitize/
#   make STATIC=1                          link test/example/bench binaries statically

CROSS ?=
ifeq ($(origin CC),default)
CC := $(CROSS)gcc
endif
AR := $(CROSS)ar
PREFIX ?= /usr/local
DESTDIR ?=
OPT ?= -O2
THREADS ?= auto
STATIC ?= 0
SANITIZE ?= 0

VERSION := $(shell sed -n 's/^\#define MNV3_VERSION_STRING "\(.*\)"/\1/p' include/mnv3.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)

ifeq ($(SANITIZE),1)
BUILD ?= build-sanitize
OPT := -O1 -g -fno-omit-frame-pointer
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD ?= build$(if $(CROSS),-$(MACHINE),)
SAN_FLAGS :=
endif

WARN := -Wall -Wextra -pedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c99 $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iinclude -Icsrc $(SAN_FLAGS)
CFLAGS ?=
LDFLAGS ?=
LDLIBS := -lm

# Threading backend: OpenMP when the compiler can build and link it, else POSIX threads.
ifeq ($(THREADS),auto)
HAVE_OPENMP := $(shell printf 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1)
THREADS := $(if $(HAVE_OPENMP),openmp,pthread)
endif
ifeq ($(THREADS),openmp)
THREAD_CFLAGS := -fopenmp -DMNV3_THREADS_OPENMP=1
THREAD_LIBS := -fopenmp
else ifeq ($(THREADS),pthread)
THREAD_CFLAGS := -DMNV3_THREADS_PTHREAD=1 -pthread
THREAD_LIBS := -pthread
else
THREAD_CFLAGS := -DMNV3_THREADS_NONE=1
THREAD_LIBS :=
endif

# Per-ISA kernels are compiled into every build of their architecture (csrc/kernels/
# kernels.h decides from the target); each x86 function carries its own target attribute
# and is selected at run time, so there is no global -m flag. 32-bit ARM needs the FPU
# named for NEON code to compile at all.
ARCH_CFLAGS :=
ifneq ($(filter arm%,$(MACHINE)),)
ARCH_CFLAGS += -mfpu=neon-vfpv4 -mfloat-abi=hard
endif

ALL_CFLAGS := $(BASE_CFLAGS) $(THREAD_CFLAGS) $(ARCH_CFLAGS) $(CFLAGS)
BIN_LDFLAGS := $(if $(filter 1,$(STATIC)),-static,) $(SAN_FLAGS) $(LDFLAGS)

LIB_SRCS := $(wildcard csrc/*.c csrc/kernels/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
STATIC_LIB := $(BUILD)/libmnv3.a
SHARED_LIB := $(BUILD)/libmnv3.so.$(VERSION)
SHARED_LINKS := $(BUILD)/libmnv3.so.$(SOVERSION) $(BUILD)/libmnv3.so

TEST_SRCS := $(wildcard tests/c/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/c/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(wildcard tests/c/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)

EXAMPLE_BINS := $(BUILD)/examples/firmware $(BUILD)/examples/firmware_nomalloc
BENCH_BIN := $(BUILD)/mnv3-bench

.PHONY: all lib test bench install uninstall clean check-warnings
all: lib $(TEST_BINS) $(EXAMPLE_BINS) $(BENCH_BIN)
lib: $(STATIC_LIB) $(SHARED_LIB)

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h csrc/*.h csrc/kernels/*.h tests/c/*.h tests/c/support/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libmnv3.so.$(SOVERSION) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(THREAD_LIBS) $(LDLIBS)
	ln -sf libmnv3.so.$(VERSION) $(BUILD)/libmnv3.so.$(SOVERSION)
	ln -sf libmnv3.so.$(VERSION) $(BUILD)/libmnv3.so

$(BUILD)/tests/%: $(BUILD)/obj/tests/c/%.o $(TEST_SUPPORT_OBJS) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

# The firmware example links only libmnv3.a (and libm). The _nomalloc variant wraps the
# allocator to prove that inference performs no heap operation.
$(BUILD)/examples/firmware: $(BUILD)/obj/examples/firmware/firmware.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $< $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

$(BUILD)/obj/examples/firmware/firmware_nomalloc.o: examples/firmware/firmware.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DMNV3_FIRMWARE_CHECK_HEAP=1 -c $< -o $@

$(BUILD)/examples/firmware_nomalloc: $(BUILD)/obj/examples/firmware/firmware_nomalloc.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -Wl,--wrap=malloc -Wl,--wrap=free -Wl,--wrap=calloc -Wl,--wrap=realloc \
	    -o $@ $< $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

$(BENCH_BIN): $(BUILD)/obj/bench/bench.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $< $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

# Test data generated from PyTorch (skipped with a message when torch is missing).
GOLDEN_DIR ?= $(BUILD)/goldens
TEST_ENV := MNV3_GOLDEN_DIR=$(GOLDEN_DIR) MNV3_SHARED_DIR=$(abspath ../shared)
TEST_RUNNER ?=

test: $(TEST_BINS) $(EXAMPLE_BINS)
	@BUILD=$(BUILD) TEST_RUNNER="$(TEST_RUNNER)" $(TEST_ENV) sh tests/run_c_tests.sh $(TEST_BINS)

bench: $(BENCH_BIN)
	$(TEST_RUNNER) $(BENCH_BIN)

PC_FILE := $(BUILD)/mnv3.pc
$(PC_FILE): Makefile
	@mkdir -p $(BUILD)
	@printf 'prefix=%s\nexec_prefix=$${prefix}\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: mnv3\nDescription: MobileNetV3 inference in portable C99\nVersion: %s\nLibs: -L$${libdir} -lmnv3\nLibs.private: %s -lm\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(VERSION)' '$(THREAD_LIBS)' > $@

install: lib $(PC_FILE)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/mnv3.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libmnv3.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmnv3.so.$(SOVERSION)
	ln -sf libmnv3.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmnv3.so
	install -m 644 $(PC_FILE) $(DESTDIR)$(PREFIX)/lib/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/mnv3.h $(DESTDIR)$(PREFIX)/lib/libmnv3.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/mnv3.pc

clean:
	rm -rf build build-*
