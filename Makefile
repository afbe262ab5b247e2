# mnv3 — plain Makefile for the C library, tests, examples and benchmark.
#
#   make                         static + shared library, tests, examples, bench
#   make test                    build and run the C test suite
#   make bench                   C-only benchmark of the built-in architectures
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make CROSS=aarch64-linux-gnu-          cross build (see docs/cross-compiling.md)
#   make THREADS=openmp|pthread|none       threading backend (default: openmp when available)
#   make SANITIZE=1                        ASan + UBSan build in build-sanitize/ (with
#                                          the library's debug assertions)
#   make test-tsan                         ThreadSanitizer build (clang, pthread backend) in
#                                          build-tsan/, running the concurrency stress test
#   make DEBUG=1                           -O0 -g with the debug assertions
#   make STATIC=1                          link test/example/bench binaries statically
#   make generate                          rewrite csrc/kernels/generated/ from tools/generate/
#   make mca                               llvm-mca estimate of the SIMD kernels' inner loops
#                                          against the FMA ports' bound: build-mca/mca.md

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
TSAN ?= 0
DEBUG ?= 0

VERSION := $(shell sed -n 's/^\#define MNV3_VERSION_STRING "\(.*\)"/\1/p' include/mnv3.h)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The shared library's ABI version, in its SONAME (docs/c-api.md, "Versioning"): MAJOR from
# 1.0 on; while MAJOR is 0 a minor release may break compatibility, so it is 0.MINOR.
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))
MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)

# Internal preconditions are assertions (MNV3_ASSERT) in debug and sanitizer builds and
# compiled out (NDEBUG) in release builds, the default.
ifeq ($(SANITIZE),1)
BUILD ?= build-sanitize
OPT := -O1 -g -fno-omit-frame-pointer
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
NDEBUG_FLAG :=
else ifeq ($(TSAN),1)
# ThreadSanitizer instruments the library's own synchronisation: the POSIX threads backend
# (libgomp is not instrumented, so OpenMP would only report false races).
BUILD ?= build-tsan
OPT := -O1 -g -fno-omit-frame-pointer
SAN_FLAGS := -fsanitize=thread
NDEBUG_FLAG :=
THREADS := pthread
else ifeq ($(DEBUG),1)
BUILD ?= build-debug
OPT := -O0 -g
SAN_FLAGS :=
NDEBUG_FLAG :=
else
BUILD ?= build$(if $(CROSS),-$(MACHINE),)
SAN_FLAGS :=
NDEBUG_FLAG := -DNDEBUG
endif

WARN := -Wall -Wextra -pedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c99 $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iinclude -Icsrc $(SAN_FLAGS) $(NDEBUG_FLAG)
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
# named for NEON code to compile at all; the float ABI stays the toolchain's (hard for
# gnueabihf, softfp works too); VFPv4's half-precision conversions are reached through
# IEEE __fp16 (float16 weights widen as they load). 64-bit file offsets keep stat() and readdir() working on
# filesystems with 64-bit inode numbers, which otherwise fail with EOVERFLOW on 32-bit.
ARCH_CFLAGS :=
ifneq ($(filter arm%,$(MACHINE)),)
ARCH_CFLAGS += -mfpu=neon-vfpv4 -mfp16-format=ieee -D_FILE_OFFSET_BITS=64
endif

ALL_CFLAGS := $(BASE_CFLAGS) $(THREAD_CFLAGS) $(ARCH_CFLAGS) $(CFLAGS)
BIN_LDFLAGS := $(if $(filter 1,$(STATIC)),-static,) $(SAN_FLAGS) $(LDFLAGS)

LIB_SRCS := $(shell find csrc -name '*.c' | LC_ALL=C sort)
LIB_HDRS := $(shell find csrc -name '*.h')
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
STATIC_LIB := $(BUILD)/libmnv3.a
SHARED_LIB := $(BUILD)/libmnv3.so.$(VERSION)
SHARED_LINKS := $(BUILD)/libmnv3.so.$(SOVERSION) $(BUILD)/libmnv3.so
PC_FILE := $(BUILD)/mnv3.pc

TEST_SRCS := $(wildcard tests/c/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/c/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(wildcard tests/c/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)

EXAMPLE_BINS := $(BUILD)/examples/firmware $(BUILD)/examples/firmware_nomalloc
BENCH_BIN := $(BUILD)/mnv3-bench

.PHONY: all lib test bench install uninstall clean check-warnings
all: lib $(TEST_BINS) $(EXAMPLE_BINS) $(BENCH_BIN)
lib: $(STATIC_LIB) $(SHARED_LIB)

# Objects depend on the compiler and flags as well as the sources: switching CC or THREADS
# in the same build directory rebuilds instead of linking stale objects.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(ALL_CFLAGS) $(BIN_LDFLAGS)
$(shell mkdir -p $(BUILD) && (test -f $(FLAGS_STAMP) && [ "$$(cat $(FLAGS_STAMP))" = '$(FLAGS_NOW)' ] || printf '%s' '$(FLAGS_NOW)' > $(FLAGS_STAMP)))

ifeq ($(SANITIZE),1)
# clang's ASan and UBSan at -O1 spend minutes and gigabytes on the x86 float kernels'
# unrolled tiles. The AVX-512 ones build at -O0 (their always_inline helpers still inline):
# under a minute. The AVX2 ones run every float test on most x86 machines, so they keep
# -O1 and leave out the pointer-overflow check, which took three quarters of their build
# (220 s each); ASan still checks every access.
$(addprefix $(BUILD)/obj/csrc/kernels/x86/,avx512_f32.o avx512_f16w.o avx512_bf16.o): \
    ALL_CFLAGS += -O0
$(addprefix $(BUILD)/obj/csrc/kernels/x86/,avx2_f32.o avx2_f16w.o): \
    ALL_CFLAGS += -fno-sanitize=pointer-overflow
endif

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) $(wildcard include/*.h tests/c/*.h tests/c/support/*.h) $(LIB_HDRS)
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

# The FMA peak measurement is shared with the Swift CLI (Sources/CMNV3Tools).
$(BUILD)/obj/bench/%.o: ALL_CFLAGS += -ISources/CMNV3Tools/include
$(BUILD)/obj/Sources/CMNV3Tools/%.o: ALL_CFLAGS += -ISources/CMNV3Tools/include
$(BENCH_BIN): $(BUILD)/obj/bench/bench.o $(BUILD)/obj/Sources/CMNV3Tools/peak.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

# int8 against float32 pointwise throughput of one kernel set (a measurement, not a test).
Q8_BENCH_BIN := $(BUILD)/mnv3-q8-gemm
.PHONY: q8-gemm-bench
q8-gemm-bench: $(Q8_BENCH_BIN)
	$(TEST_RUNNER) $(Q8_BENCH_BIN) $(Q8_BENCH_FLAGS)
$(Q8_BENCH_BIN): $(BUILD)/obj/bench/q8_gemm.o $(BUILD)/obj/Sources/CMNV3Tools/peak.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

# Test data generated from PyTorch (skipped with a message when torch is missing).
GOLDEN_DIR ?= build/goldens
TEST_ENV := MNV3_GOLDEN_DIR=$(GOLDEN_DIR) MNV3_SHARED_DIR=$(abspath ../shared) \
    MNV3_QMODEL_DIR=$(abspath $(BUILD)/qmodels)
ifeq ($(SANITIZE),1)
TEST_ENV += LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)
endif
TEST_RUNNER ?=
# Test binaries `make test` builds but does not run (names, e.g. "test_half").
TEST_SKIP ?=

test: $(TEST_BINS) $(EXAMPLE_BINS) $(SHARED_LIB) $(PC_FILE)
	@BUILD=$(BUILD) TEST_RUNNER="$(TEST_RUNNER)" $(TEST_ENV) sh tests/run_c_tests.sh \
	    $(filter-out $(TEST_SKIP:%=$(BUILD)/tests/%),$(TEST_BINS)) $(BUILD)/examples/firmware_nomalloc
	@$(if $(strip $(TEST_SKIP)),echo "not run here: $(TEST_SKIP)")
	@sh tests/check_abi.sh $(SHARED_LIB) include/mnv3.h tests/libmnv3.symbols $(PC_FILE)

bench: $(BENCH_BIN)
	$(TEST_RUNNER) $(BENCH_BIN)

# The concurrency stress test (and any TSAN_TESTS) under ThreadSanitizer: a data race in
# the library is reported and fails the run. TSAN_CC needs -fsanitize=thread (Debian:
# clang and libclang-rt-dev, or gcc with libtsan).
TSAN_CC ?= clang
TSAN_TESTS ?= test_concurrency test_arena
TSAN_OPTIONS ?= halt_on_error=1 second_deadlock_stack=1
.PHONY: test-tsan
test-tsan:
	+$(MAKE) --no-print-directory TSAN=1 CC=$(TSAN_CC) $(TSAN_TESTS:%=build-tsan/tests/%)
	@BUILD=build-tsan TSAN_OPTIONS="$(TSAN_OPTIONS)" \
	    sh tests/run_c_tests.sh $(TSAN_TESTS:%=build-tsan/tests/%)

# The x86 kernel sets this CPU lacks (AVX-512 F, VNNI and BF16; AVX-VNNI) on SIMDe's
# portable versions of their instructions (csrc/kernels/x86/x86_intrin.h), held to the
# reference by the whole C suite: every set is exercised on any x86-64 machine with AVX2,
# FMA and F16C (which the build then uses natively). Needs SIMDe's headers (Debian:
# libsimde-dev); slow, so the suite runs its quick loops. Built at -O1: gcc at -O2 spends
# four minutes on the AVX-512 float kernels through SIMDe, more than the suite's run.
X86_EMULATED_CFLAGS := -DMNV3_X86_EMULATED -mavx2 -mfma -mf16c
.PHONY: test-x86-emulated
test-x86-emulated:
	@if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo || \
	    ! grep -qw f16c /proc/cpuinfo; then \
	    echo "test-x86-emulated: skipped: needs an x86-64 CPU with AVX2, FMA and F16C"; exit 0; fi; \
	if ! printf '#include <simde/x86/avx512.h>\n' | $(CC) -E -x c - >/dev/null 2>&1; then \
	    echo "test-x86-emulated: skipped: SIMDe headers not found (apt-get install libsimde-dev)"; \
	    exit 0; fi; \
	MNV3_TEST_QUICK=1 $(MAKE) --no-print-directory BUILD=build-x86-emulated OPT=-O1 \
	    CFLAGS="$(X86_EMULATED_CFLAGS)" test

# Regenerated on every install: PREFIX may differ from the last one.
.PHONY: FORCE
$(PC_FILE): FORCE
	@mkdir -p $(BUILD)
	@printf 'prefix=%s\nexec_prefix=$${prefix}\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: mnv3\nDescription: MobileNetV3 inference in portable C99\nVersion: %s\nLibs: -L$${libdir} -lmnv3\nLibs.private: %s -lm\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(VERSION)' '$(THREAD_LIBS)' > $@

install: lib $(PC_FILE)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/mnv3.h include/mnv3_npy.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libmnv3.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmnv3.so.$(SOVERSION)
	ln -sf libmnv3.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmnv3.so
	install -m 644 $(PC_FILE) $(DESTDIR)$(PREFIX)/lib/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/mnv3.h $(DESTDIR)$(PREFIX)/include/mnv3_npy.h $(DESTDIR)$(PREFIX)/lib/libmnv3.* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/mnv3.pc

clean:
	rm -rf build build-*

# --- ARM cross builds tested under qemu-user ---------------------------------------------
#   make test-arm64        AArch64 (Raspberry Pi 4/5 64-bit, Jetson, i.MX8)
#   make test-armhf        32-bit ARMv7 NEON-VFPv4 (Raspberry Pi OS 32-bit)
# Each builds statically into its own directory, then runs the whole C suite twice under
# qemu: on the NEON kernels, and forced onto the scalar reference. Data paths are made
# absolute so the same goldens and shared models are found. MNV3_TEST_QUICK lets tests
# shrink loops, because emulation is one to two orders of magnitude slower than hardware.
# QEMU_SCALAR_PASS=no skips the second pass (the kernel tests still compare every NEON set
# with the scalar reference on that target). The second pass leaves out the tests that
# go through every kernel set themselves whatever MNV3_ISA says (the kernel tests and
# test_half): the first pass already ran them on this target. $(5): tests the first pass
# leaves out, which another target runs.
QEMU_AARCH64 ?= qemu-aarch64
QEMU_ARM ?= qemu-arm
QEMU_SCALAR_PASS ?= yes
ARM_GOLDEN_DIR := $(abspath $(if $(filter command line environment,$(origin GOLDEN_DIR)),$(GOLDEN_DIR),build/goldens))

# $(1) toolchain triplet, $(2) qemu binary, $(3) build directory, $(4) qemu CPUs the int8
# kernel tests run on besides the default one (each int8 variant runs where its CPU
# feature is present: plain NEON, SDOT, I8MM)
QEMU_SCALAR_SKIP := test_kernels test_kernels_q8 test_half
define arm_qemu_test
	+$(MAKE) CROSS=$(1)- CC=$(1)-gcc STATIC=1 BUILD=$(3) GOLDEN_DIR=$(ARM_GOLDEN_DIR) all
	@for cpu in $(4); do echo "test_kernels_q8 under $(2) -cpu $$cpu"; \
	    MNV3_TEST_QUICK=1 $(2) -L /usr/$(1) -cpu $$cpu $(3)/tests/test_kernels_q8 || exit 1; done
	+MNV3_ISA=neon MNV3_TEST_QUICK=1 $(MAKE) CROSS=$(1)- CC=$(1)-gcc STATIC=1 BUILD=$(3) \
	    GOLDEN_DIR=$(ARM_GOLDEN_DIR) TEST_RUNNER="$(2) -L /usr/$(1)" TEST_SKIP="$(5)" test
	+$(if $(filter yes,$(QEMU_SCALAR_PASS)),MNV3_ISA=scalar MNV3_TEST_QUICK=1 $(MAKE) \
	    CROSS=$(1)- CC=$(1)-gcc STATIC=1 BUILD=$(3) GOLDEN_DIR=$(ARM_GOLDEN_DIR) \
	    TEST_RUNNER="$(2) -L /usr/$(1)" TEST_SKIP="$(QEMU_SCALAR_SKIP)" test,@echo "scalar pass under $(2) skipped (QEMU_SCALAR_PASS=$(QEMU_SCALAR_PASS))")
endef

.PHONY: test-arm64 test-armhf
# test_half runs in test-arm64-fp16 instead, on the three cores whose FP16 support differs.
test-arm64:
	$(call arm_qemu_test,aarch64-linux-gnu,$(QEMU_AARCH64),build-test-arm64,cortex-a72 cortex-a76 max,test_half)
	+$(MAKE) --no-print-directory test-arm64-fp16

test-armhf:
	$(call arm_qemu_test,arm-linux-gnueabihf,$(QEMU_ARM),build-test-armhf,cortex-a7)

# float16 weights and relaxed precision on emulated cores: cortex-a72 has no FP16 arithmetic
# (relaxed precision falls back to fp32), cortex-a76 and max have it (float16 activations,
# fp16 pointwise and depthwise arithmetic). qemu-user takes the core from QEMU_CPU.
.PHONY: test-arm64-fp16
test-arm64-fp16:
	+$(MAKE) CROSS=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc STATIC=1 BUILD=build-test-arm64 \
	    build-test-arm64/tests/test_half
	for c in cortex-a72:fp32 cortex-a76:fp16 max:fp16; do \
	    echo "test_half on $${c%%:*}"; \
	    QEMU_CPU=$${c%%:*} MNV3_EXPECT_RELAXED=$${c##*:} \
	        $(QEMU_AARCH64) -L /usr/aarch64-linux-gnu build-test-arm64/tests/test_half || exit 1; \
	done

# --- The ARM sources under an older clang ---------------------------------------------------
#   make check-clang-arm   every library source and the peak tool compiled by $(CLANG_ARM) for
#                          AArch64 (with the default -march and with fp16, dotprod and i8mm
#                          in it) and for ARMv7, warnings as errors. How an AArch64 set
#                          enables its extension differs between clang versions (kernels.h);
#                          Debian 12's clang is 14.
CLANG_ARM ?= clang-14
CLANG_ARM_TARGETS := "--target=aarch64-linux-gnu" \
    "--target=aarch64-linux-gnu -march=armv8.6-a+fp16+dotprod+i8mm" \
    "--target=armv7a-linux-gnueabihf -mfpu=neon-vfpv4 -mfloat-abi=hard"
.PHONY: check-clang-arm
check-clang-arm:
	@for t in $(CLANG_ARM_TARGETS); do \
	    echo "$(CLANG_ARM) $$t"; \
	    for f in $(LIB_SRCS) Sources/CMNV3Tools/peak.c; do \
	        $(CLANG_ARM) $$t -std=c99 -O2 $(WARN) -Werror -Iinclude -Icsrc \
	            -ISources/CMNV3Tools/include -c -o /dev/null $$f || exit 1; \
	    done; \
	done

# --- Static kernel estimates with llvm-mca ------------------------------------------------
#   make mca          the x86-64, AArch64 and ARMv7 kernel sources compiled to assembly with
#                     this Makefile's compiler and flags (a cross gcc for the foreign ones;
#                     a target whose gcc is missing is skipped), their microkernels' inner
#                     loops run through llvm-mca on several core models (tools/mca_report.py),
#                     report in $(MCA_OUT)/mca.md. Skipped with a message without llvm-mca.
#                     A model, not a measurement: see docs/benchmarks.md.
#   make kernel-asm   only the assembly, for this build's target: $(BUILD)/asm/csrc/kernels/*/
# The microkernels are found by their names (mnv3_f32_gemm_8x32__avx512: precision,
# operation, tile, kernel set), which also name the operation; they are called through the
# rows' tables, so none is inlined away. MCA_FLAGS adds options (--loops main, --cores ...,
# see tools/mca_report.py --help).
MCA_OUT ?= build-mca
MCA_FLAGS ?=

ifneq ($(filter x86_64% amd64%,$(MACHINE)),)
KERNEL_ASM := $(addprefix $(BUILD)/asm/csrc/kernels/x86/,avx2_f32.s avx512_f32.s avx2_q8.s avx2_q8_conv.s \
    avxvnni_q8.s avx512vnni_q8.s avx2_f16w.s avx512_bf16.s)
else ifneq ($(filter aarch64% arm%,$(MACHINE)),)
KERNEL_ASM := $(addprefix $(BUILD)/asm/csrc/kernels/arm/,neon_f32.s neon_q8.s neon_f16w.s)
endif
ifneq ($(filter aarch64%,$(MACHINE)),)
KERNEL_ASM += $(BUILD)/asm/csrc/kernels/arm/neon_f16.s
endif

# The object rule's command with -S in place of -c.
$(BUILD)/asm/%.s: %.c $(FLAGS_STAMP) $(wildcard include/*.h) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -S $< -o $@

.PHONY: mca kernel-asm
kernel-asm: $(KERNEL_ASM)

# Each target gets its own build directory under $(MCA_OUT), so the three sets of flags
# never share an object or a flags stamp; this machine's own target uses no prefix.
mca:
	@if ! $(PYTHON) tools/mca_report.py --check >/dev/null 2>&1; then \
	    echo "mca: skipped: llvm-mca not found (apt-get install llvm-19, or llvm for LLVM 14;"; \
	    echo "mca: scripts/install-deps.sh --mca installs it with the cross compilers)"; \
	    exit 0; \
	fi; \
	kernels=""; \
	for t in x86_64-linux-gnu aarch64-linux-gnu arm-linux-gnueabihf; do \
	    case "$(MACHINE)" in "$${t%%-*}"*) pre="";; *) pre="$$t-";; esac; \
	    if ! command -v "$${pre}gcc" >/dev/null 2>&1; then \
	        echo "mca: $${pre}gcc not found, $$t skipped (scripts/install-deps.sh --mca)"; continue; \
	    fi; \
	    $(MAKE) --no-print-directory CROSS="$$pre" $${pre:+CC=$${pre}gcc} BUILD=$(MCA_OUT)/$$t \
	        kernel-asm || exit 1; \
	    x86=$(MCA_OUT)/$$t/asm/csrc/kernels/x86; arm=$(MCA_OUT)/$$t/asm/csrc/kernels/arm; \
	    case $$t in \
	        x86_64*) kernels="$$kernels --kernels avx2 x86-avx2 $$x86/avx2_f32.s --kernels avx512 x86-avx512 $$x86/avx512_f32.s \
	            --kernels q8-avx2 x86-avx2 $$x86/avx2_q8.s:$$x86/avx2_q8_conv.s --kernels q8-avxvnni x86-avxvnni $$x86/avxvnni_q8.s \
	            --kernels q8-avx512vnni x86-avx512 $$x86/avx512vnni_q8.s \
	            --kernels avx2-f16w x86-avx2 $$x86/avx2_f16w.s --kernels avx512-bf16 x86-avx512 $$x86/avx512_bf16.s";; \
	        aarch64*) kernels="$$kernels --kernels neon-a64 aarch64 $$arm/neon_f32.s --kernels q8-neon-a64 aarch64 $$arm/neon_q8.s \
	            --kernels neon-a64-f16w aarch64 $$arm/neon_f16w.s --borrow neon-a64-f16w gemm neon-a64 \
	            --kernels neon-a64-fp16 aarch64 $$arm/neon_f16.s --borrow neon-a64-fp16 conv neon-a64";; \
	        *) kernels="$$kernels --kernels neon-a32 armv7 $$arm/neon_f32.s --kernels q8-neon-a32 armv7 $$arm/neon_q8.s \
	            --kernels neon-a32-f16w armv7 $$arm/neon_f16w.s --borrow neon-a32-f16w gemm neon-a32";; \
	    esac; \
	done; \
	if [ -z "$$kernels" ]; then echo "mca: skipped: no compiler for any kernel set"; exit 0; fi; \
	$(PYTHON) tools/mca_report.py $$kernels $(MCA_FLAGS) -o $(MCA_OUT)/mca.md

# ---------------------------------------------------------------------------------------
# Fuzzing: the model loader and the .npy parser under libFuzzer with ASan and UBSan.
#   make fuzz FUZZ_SECONDS=60        run each fuzzer for that long (clang with libFuzzer)
#   make fuzz-corpus                 regenerate the seed files in fuzz/corpus/
# New inputs go to build-fuzz/corpus/; crashes to build-fuzz/ (crash-*), kept for replay:
#   build-fuzz/fuzz_model_load build-fuzz/crash-...
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz
# The fuzzers drive the parsers; SIMD kernels (tested elsewhere) would only slow the
# sanitized build down.
FUZZ_CFLAGS := -std=c99 -g -O1 -fno-omit-frame-pointer -Iinclude -Icsrc \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DMNV3_THREADS_NONE=1 \
    -DMNV3_NO_SIMD=1
FUZZERS := model_load npy

.PHONY: fuzz fuzz-build fuzz-corpus
fuzz-build: $(FUZZERS:%=$(FUZZ_BUILD)/fuzz_%)

FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
# Keep the instrumented objects: rebuilding them all is slow.
.SECONDARY: $(FUZZ_LIB_OBJS) $(FUZZERS:%=$(FUZZ_BUILD)/obj/fuzz/fuzz_%.o)

$(FUZZ_BUILD)/obj/%.o: %.c $(wildcard include/*.h) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^ -lm

fuzz: fuzz-build
	@set -e; for f in $(FUZZERS); do \
	    seeds=fuzz/corpus/$$(echo $$f | sed 's/model_load/model/'); \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$f; \
	    echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_BUILD)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	        -artifact_prefix=$(FUZZ_BUILD)/ -print_final_stats=1 \
	        $(FUZZ_BUILD)/corpus/$$f $$seeds; \
	done

fuzz-corpus: $(BUILD)/fuzz/make_corpus
	@mkdir -p fuzz/corpus/model fuzz/corpus/npy
	$(TEST_RUNNER) $(BUILD)/fuzz/make_corpus fuzz/corpus

$(BUILD)/fuzz/make_corpus: $(BUILD)/obj/fuzz/make_corpus.o $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(BIN_LDFLAGS) -o $@ $< $(STATIC_LIB) $(THREAD_LIBS) $(LDLIBS)

# --- Golden test data ----------------------------------------------------------------------
#   make goldens     (re)generate $(GOLDEN_DIR) with tools/make_goldens.py when tools/ changed:
#                    PyTorch references (needs python3 with numpy and torch) and the real
#                    TFLite model from $(SHARED_DIR) (needs numpy and tflite). Skipped with a
#                    message when the packages are missing; `make test` runs it first.
#   make pytest      the Python tools' own tests (tests/python, needs pytest)
PYTHON ?= python3
SHARED_DIR ?= ../shared
GOLDEN_STAMP := $(GOLDEN_DIR)/.stamp
CONVERT_DIR := python/mnv3/convert
GOLDEN_TOOLS := tools/make_goldens.py $(addprefix $(CONVERT_DIR)/,modelfile.py reference.py arch.py \
    export_torchvision.py walkthrough_model.py _torchvision_compat.py import_tflite.py golden.py)

.PHONY: goldens pytest generate
# The generated kernel loops: tools/generate/NAME.py writes csrc/kernels/generated/NAME_loops.h
# (tests/python checks that the headers in the tree are current).
generate:
	@for g in tools/generate/*.py; do \
	    n=$$(basename $$g .py); \
	    $(PYTHON) $$g > csrc/kernels/generated/$${n}_loops.h.tmp && \
	        mv csrc/kernels/generated/$${n}_loops.h.tmp csrc/kernels/generated/$${n}_loops.h || exit 1; \
	    echo "generate: csrc/kernels/generated/$${n}_loops.h"; \
	done

goldens:
	@if $(PYTHON) -c 'import numpy, torch' >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory $(GOLDEN_STAMP); \
	else \
	    echo "goldens: skipping PyTorch goldens: torch not installed (pip install -r tools/requirements.txt)"; \
	    if $(PYTHON) -c 'import numpy, tflite' >/dev/null 2>&1; then \
	        $(PYTHON) tools/make_goldens.py --out $(GOLDEN_DIR) --shared $(SHARED_DIR) --tflite-golden; \
	    else \
	        echo "goldens: skipping the TFLite import: numpy/tflite not installed (pip install -r tools/requirements.txt)"; \
	    fi; \
	fi

$(GOLDEN_STAMP): $(GOLDEN_TOOLS)
	$(PYTHON) tools/make_goldens.py --out $(GOLDEN_DIR) --shared $(SHARED_DIR)
	@touch $@

test: goldens qmodels

# The quantized TFLite models of $(SHARED_DIR) imported natively (int8), for the C suite's
# byte-for-byte comparison with TFLite's reference kernels (tests/c/test_quant.c).
QMODEL_DIR ?= $(BUILD)/qmodels
QMODELS := mobilenet_v3_small_1.0_224_uint8 mobilenet_v3_small_int8_seed1 \
    mobilenet_v3_large_int8_seed1
QMODEL_STAMP := $(QMODEL_DIR)/.stamp
.PHONY: qmodels
qmodels:
	@if [ ! -d $(SHARED_DIR)/models ]; then \
	    echo "qmodels: skipping: $(SHARED_DIR)/models not found"; \
	elif ! $(PYTHON) -c 'import numpy, tflite' >/dev/null 2>&1; then \
	    echo "qmodels: skipping: numpy/tflite not installed (pip install -r tools/requirements.txt)"; \
	else \
	    $(MAKE) --no-print-directory $(QMODEL_STAMP); \
	fi

$(QMODEL_STAMP): tools/import_tflite.py $(addprefix $(CONVERT_DIR)/,import_tflite.py modelfile.py quant.py)
	@mkdir -p $(QMODEL_DIR)
	@for m in $(QMODELS); do \
	    $(PYTHON) tools/import_tflite.py $(SHARED_DIR)/models/$$m.tflite -o $(QMODEL_DIR)/$$m.mnv3 || exit 1; \
	done
	@touch $@

pytest:
	$(PYTHON) -m pytest -q tests/python
