# riskd - plain GNU Makefile.
#
#   make                 build/riskd, build/riskctl and build/plugins/*.so
#   make test            build and run the whole suite (unit + integration)
#   make SAN=1 test      the same under AddressSanitizer + UBSan (build/san/)
#   make check           make test, then make SAN=1 test (what CI runs)
#   make fuzz            build the libFuzzer targets with clang (build/fuzz/)
#                        and run each for FUZZ_SECONDS (default 30)
#   make bench           performance benchmark (tests/bench/run.sh; BENCH_SIZES etc.)
#   make install         DESTDIR/PREFIX aware
#   make clean
#
# The user's CFLAGS/LDFLAGS are appended. Libraries come from pkg-config.

OPTIMIZATION ?= -O2
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
CC ?= cc

PKGS := libuv hiredis jansson libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

WARN := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
        -Wpointer-arith -Wcast-qual -Werror

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPTIMIZATION := -O1
else
BUILD ?= build
SANFLAGS :=
endif

RK_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPTIMIZATION) $(WARN) -fPIC \
             -Iinclude -Idaemon -Itests/lib $(PKG_CFLAGS) $(SANFLAGS) $(CFLAGS)
RK_LDFLAGS := $(SANFLAGS) $(LDFLAGS)
RK_LIBS := $(PKG_LIBS) -lhttp_parser -ldl -lm

# main.c and riskctl.c hold the two programs' main(); the rest is libriskd.a.
DAEMON_SRCS := $(filter-out daemon/main.c daemon/riskctl.c,$(wildcard daemon/*.c))
BUILTIN_SRCS := $(wildcard detectors/*.c)
PLUGIN_SRCS := $(wildcard detectors/plugins/*.c)
TEST_SRCS := $(wildcard tests/test-*.c)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)

LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(DAEMON_SRCS) $(BUILTIN_SRCS))
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRCS))
PLUGINS := $(patsubst detectors/plugins/%.c,$(BUILD)/plugins/%.so,$(PLUGIN_SRCS))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))

.PHONY: all test check install clean bench fuzz
.SECONDARY:
all: $(BUILD)/riskd $(BUILD)/riskctl $(PLUGINS)

$(BUILD)/obj/%.o: %.c $(wildcard include/riskd/*.h) daemon/internal.h $(wildcard tests/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -c $< -o $@

$(BUILD)/libriskd.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/riskd: $(BUILD)/obj/daemon/main.o $(BUILD)/libriskd.a
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

# The operator CLI: hiredis's synchronous API, and libriskd.a for the
# configuration loader, the registry check and the time functions.
$(BUILD)/riskctl: $(BUILD)/obj/daemon/riskctl.o $(BUILD)/libriskd.a
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

$(BUILD)/plugins/%.so: detectors/plugins/%.c $(wildcard include/riskd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -shared -o $@ $< $(RK_LDFLAGS)

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c $(wildcard include/riskd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -shared -o $@ $< $(RK_LDFLAGS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTLIB_OBJS) $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS) -lcmocka -lhiredis

test: all $(TESTS) $(TEST_PLUGINS)
	BUILD=$(BUILD) sh tests/run.sh $(TESTS)

# The whole suite: plain, then under AddressSanitizer + UBSan.
check:
	$(MAKE) test
	$(MAKE) SAN=1 test

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/obj/tests/lib/gen.o
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread -lm

# The natural-key store's own benchmark links the library.
$(BUILD)/bench/dedupe: $(BUILD)/obj/tests/bench/dedupe.o $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

bench: all $(BENCH_BINS)
	BUILD=$(BUILD) sh tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/riskd/plugins
	install -m 0755 $(BUILD)/riskd $(DESTDIR)$(PREFIX)/bin/riskd
	install -m 0755 $(BUILD)/riskctl $(DESTDIR)$(PREFIX)/bin/riskctl
	for p in $(PLUGINS); do install -m 0644 $$p $(DESTDIR)$(PREFIX)/lib/riskd/plugins/; done
	install -d $(DESTDIR)$(PREFIX)/include/riskd
	install -m 0644 include/riskd/*.h $(DESTDIR)$(PREFIX)/include/riskd/
	install -d $(DESTDIR)$(SYSCONFDIR)/riskd
	install -m 0644 config/riskd.json $(DESTDIR)$(SYSCONFDIR)/riskd/riskd.json
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0644 systemd/riskd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/riskd.service
	install -d $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 systemd/riskd.8 $(DESTDIR)$(PREFIX)/share/man/man8/riskd.8
	install -d $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0644 detectors/riskd-detectors.7 $(DESTDIR)$(PREFIX)/share/man/man7/riskd-detectors.7

clean:
	rm -rf build

# ---------------------------------------------------------------------------
# Fuzzing (tests/fuzz/): libFuzzer targets built with clang under ASan and
# UBSan, each linked with the daemon sources (except main.c) and the
# built-in detectors compiled for it. `make fuzz` runs each one for
# FUZZ_SECONDS on a copy of its seed corpus in build/fuzz/corpus-* (kept
# between runs; the repository is never written); crashes are saved as
# build/fuzz/crash-<target>-*. FUZZ_OPTS adds libFuzzer options.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_OPTS ?=
FUZZ_DIR := build/fuzz
FUZZ_TARGETS := event config restore
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -Iinclude -Idaemon -Itests/lib \
               $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(DAEMON_SRCS) $(BUILTIN_SRCS))
FUZZERS := $(patsubst %,$(FUZZ_DIR)/fuzz-%,$(FUZZ_TARGETS))

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard include/riskd/*.h) daemon/internal.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz-%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz-%.o $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(RK_LIBS)

# The seed generator of the restore corpus is an ordinary program.
$(FUZZ_DIR)/mkseeds: tests/fuzz/mkseeds.c $(BUILD)/obj/tests/lib/fakehost.o $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -o $@ $^ $(RK_LDFLAGS) $(RK_LIBS)

fuzz: $(FUZZERS) $(FUZZ_DIR)/mkseeds
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus-$$t && \
	    cp tests/fuzz/corpus/$$t/* $(FUZZ_DIR)/corpus-$$t/ || exit 1; \
	done
	$(FUZZ_DIR)/mkseeds $(FUZZ_DIR)/corpus-restore
	for t in $(FUZZ_TARGETS); do \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    $(FUZZ_DIR)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$$t- \
	        $$dict $(FUZZ_OPTS) $(FUZZ_DIR)/corpus-$$t || exit 1; \
	done
