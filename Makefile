# riskd - plain GNU Makefile.
#
#   make                 build/riskd, build/riskctl, build/riskweb and build/plugins/*.so
#   make test            build and run the whole suite (unit + integration)
#   make check-unit      build and run tests/unit/ only (plain build, seconds)
#   make SAN=1 test      the same under AddressSanitizer + UBSan (build/san/)
#   make check           install missing packages (tests/deps.sh), lint, make test,
#                        the unit tests under valgrind, make SAN=1 test (what CI runs)
#   make fuzz            build the libFuzzer targets with clang (build/fuzz/)
#                        and run each for FUZZ_SECONDS (default 30)
#   make bench           performance benchmark (tests/bench/run.sh; BENCH_SIZES etc.)
#   make bench-web       riskweb with 1,000 live feeds (tests/bench/riskweb.sh)
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
RK_LIBS := $(PKG_LIBS) -lhttp_parser -lcsv -ldl -lm

# daemon/lib, daemon/redis, daemon/pipeline and the built-in detectors are
# libriskd.a, the library every program links. Each program's folder holds
# its main() and what only it uses: daemon/riskd/ (node, metrics, notify)
# and daemon/riskctl/ (one file per command group).
LIB_SRCS := $(wildcard daemon/lib/*.c daemon/redis/*.c daemon/pipeline/*.c)
RISKD_SRCS := $(filter-out daemon/riskd/main.c,$(wildcard daemon/riskd/*.c))
RISKCTL_SRCS := $(wildcard daemon/riskctl/*.c)
# riskweb: its C files, and the page's files embedded into it at build time
# (daemon/riskweb/embed.sh), Chart.js from Debian's libjs-chart.js included.
RISKWEB_SRCS := $(filter-out daemon/riskweb/main.c,$(wildcard daemon/riskweb/*.c))
WEB_FILES := $(wildcard daemon/riskweb/www/*)
CHARTJS ?= /usr/share/javascript/chart.js/chart.min.js
BUILTIN_SRCS := $(wildcard detectors/*.c)
PLUGIN_SRCS := $(wildcard detectors/plugins/*.c)
# Unit tests: pure logic, no Redis. Integration tests: a real redis-server
# (tests/lib/itest.c). Both build as $(BUILD)/tests/<file name>.
UNIT_SRCS := $(wildcard tests/unit/test-*.c)
INTEGRATION_SRCS := $(wildcard tests/integration/test-*.c)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
HEADERS := $(wildcard include/riskd/*.h daemon/*.h daemon/*/*.h detectors/*.h)

ifneq ($(wildcard daemon/*.c tests/test-*.c),)
$(error $(wildcard daemon/*.c tests/test-*.c): sources belong in daemon/<lib|redis|pipeline|riskd|riskctl|riskweb>/ and tests/<unit|integration>/)
endif

LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS) $(BUILTIN_SRCS))
RISKD_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(RISKD_SRCS))
RISKCTL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(RISKCTL_SRCS))
RISKWEB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(RISKWEB_SRCS)) $(BUILD)/obj/gen/riskweb_assets.o
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRCS))
PLUGINS := $(patsubst detectors/plugins/%.c,$(BUILD)/plugins/%.so,$(PLUGIN_SRCS))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEGRATION_SRCS))
TESTS := $(UNIT_TESTS) $(INTEGRATION_TESTS)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))

.PHONY: lint memcheck all test check check-unit install clean bench bench-web fuzz
.SECONDARY:
all: $(BUILD)/riskd $(BUILD)/riskctl $(BUILD)/riskweb $(PLUGINS)

$(BUILD)/obj/%.o: %.c $(HEADERS) $(wildcard tests/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -c $< -o $@

$(BUILD)/libriskd.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/riskd: $(BUILD)/obj/daemon/riskd/main.o $(RISKD_OBJS) $(BUILD)/libriskd.a
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

# The operator CLI: hiredis's synchronous API, and libriskd.a for the
# configuration loader, the registry check and the time functions; libcurl
# for riskctl forward (Alertmanager's HTTP API).
$(BUILD)/riskctl: $(RISKCTL_OBJS) $(BUILD)/libriskd.a
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS) -lcurl -lpthread

# The dashboard: libuv + http-parser like riskd's metrics endpoint, hiredis
# through the library's connection layer; its page is inside the binary.
$(BUILD)/riskweb: $(BUILD)/obj/daemon/riskweb/main.o $(RISKWEB_OBJS) $(BUILD)/libriskd.a
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

$(BUILD)/gen/riskweb_assets.c: daemon/riskweb/embed.sh $(WEB_FILES) $(CHARTJS)
	@mkdir -p $(dir $@)
	sh daemon/riskweb/embed.sh $@ $(WEB_FILES) $(CHARTJS)

$(BUILD)/obj/gen/riskweb_assets.o: $(BUILD)/gen/riskweb_assets.c daemon/riskweb/riskweb.h
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -c $< -o $@

# test-riskweb also checks riskweb's access decision directly.
$(BUILD)/tests/test-riskweb: $(RISKWEB_OBJS)

$(BUILD)/plugins/%.so: detectors/plugins/%.c $(wildcard include/riskd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -shared -o $@ $< $(RK_LDFLAGS)

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c $(wildcard include/riskd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -shared -o $@ $< $(RK_LDFLAGS)

# Unit tests link the library only; integration tests also riskd's own
# objects (test-lease checks node.c's partition function).
$(UNIT_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJS) $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS) -lcmocka -lhiredis

$(INTEGRATION_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TESTLIB_OBJS) \
                      $(RISKD_OBJS) $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS) -lcmocka -lhiredis

test: all $(TESTS) $(TEST_PLUGINS)
	BUILD=$(BUILD) TEST_JOBS=$(TEST_JOBS) sh tests/run.sh $(TESTS)

# The unit tests alone, plain build: no redis-server, a few seconds.
check-unit: all $(UNIT_TESTS) $(TEST_PLUGINS)
	BUILD=$(BUILD) sh tests/run.sh $(UNIT_TESTS)

# How many jobs the suite runs at once where they cannot disturb each other
# (builds, the unit tests under valgrind, the fuzzers).
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
# How many test binaries run at once (tests/run.sh): they mostly wait on
# their servers, and each takes its servers' ports from its own range.
TEST_JOBS ?= 2

# Static analysis: cppcheck's warnings over every C file of the programs
# and detectors (jansson's iteration macros are not expanded: unknownMacro).
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --std=c11 -Iinclude -Idaemon --suppress=missingIncludeSystem \
	    --suppress=unknownMacro daemon detectors

# The unit tests under valgrind's memcheck (invalid accesses, uninitialised
# values, definite leaks); the integration tests run under ASan instead.
# JOBS of them at a time (no unit test touches what another one does).
memcheck: all $(UNIT_TESTS) $(TEST_PLUGINS)
	@printf '%s\n' $(UNIT_TESTS) | BUILD=$(BUILD) xargs -P $(JOBS) -I{} sh -c \
	    'echo "=== valgrind {}"; valgrind -q --error-exitcode=99 --leak-check=full \
	        --errors-for-leak-kinds=definite {} >{}.valgrind 2>&1 || \
	        { cat {}.valgrind; echo "memcheck failed: {}"; exit 1; }' || \
	    { echo "memcheck failed"; exit 1; }

# The whole suite: static analysis, plain, under valgrind (unit tests), then
# under AddressSanitizer + UBSan.
# The whole suite's builds use every core (JOBS); the integration tests
# themselves run one at a time.
check:
	sh tests/deps.sh all
	$(MAKE) lint
	$(MAKE) -j$(JOBS) test
	$(MAKE) -j$(JOBS) memcheck
	$(MAKE) -j$(JOBS) SAN=1 test

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/obj/tests/lib/gen.o
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread -lm

# The natural-key store's own benchmark links the library.
$(BUILD)/bench/dedupe: $(BUILD)/obj/tests/bench/dedupe.o $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

# And the indicators' memory (tests/bench/indicators.c).
$(BUILD)/bench/indicators: $(BUILD)/obj/tests/bench/indicators.o $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

# So does the reference lists' (tests/bench/lists.c).
$(BUILD)/bench/lists: $(BUILD)/obj/tests/bench/lists.o $(BUILD)/libriskd.a
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(RK_LIBS)

bench: all $(BENCH_BINS)
	BUILD=$(BUILD) sh tests/bench/run.sh

# riskweb with 1,000 live feeds: memory, XADD-to-last-client delay, a stalled client.
bench-web: $(BUILD)/riskweb $(BUILD)/bench/sse
	BUILD=$(BUILD) sh tests/bench/riskweb.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/riskd/plugins
	install -m 0755 $(BUILD)/riskd $(DESTDIR)$(PREFIX)/bin/riskd
	install -m 0755 $(BUILD)/riskctl $(DESTDIR)$(PREFIX)/bin/riskctl
	install -m 0755 $(BUILD)/riskweb $(DESTDIR)$(PREFIX)/bin/riskweb
	for p in $(PLUGINS); do install -m 0644 $$p $(DESTDIR)$(PREFIX)/lib/riskd/plugins/; done
	install -d $(DESTDIR)$(PREFIX)/include/riskd
	install -m 0644 include/riskd/*.h $(DESTDIR)$(PREFIX)/include/riskd/
	install -d $(DESTDIR)$(SYSCONFDIR)/riskd
	install -m 0644 config/riskd.json $(DESTDIR)$(SYSCONFDIR)/riskd/riskd.json
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0644 systemd/riskd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/riskd.service
	install -m 0644 systemd/riskd-forward.service \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/riskd-forward.service
	install -d $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 daemon/riskd/riskd.8 $(DESTDIR)$(PREFIX)/share/man/man8/riskd.8
	install -m 0644 daemon/riskweb/riskweb.8 $(DESTDIR)$(PREFIX)/share/man/man8/riskweb.8
	install -m 0644 systemd/riskweb.service $(DESTDIR)$(PREFIX)/lib/systemd/system/riskweb.service
	install -d $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0644 detectors/riskd-detectors.7 $(DESTDIR)$(PREFIX)/share/man/man7/riskd-detectors.7
	install -m 0644 include/riskd/riskd-plugin.7 $(DESTDIR)$(PREFIX)/share/man/man7/riskd-plugin.7
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 daemon/riskctl/riskctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/riskctl.1
	install -m 0644 config/riskd.json.5 $(DESTDIR)$(PREFIX)/share/man/man5/riskd.json.5
	install -d $(DESTDIR)$(PREFIX)/share/riskd/prometheus $(DESTDIR)$(PREFIX)/share/riskd/grafana
	install -m 0644 config/prometheus/riskd-rules.yml $(DESTDIR)$(PREFIX)/share/riskd/prometheus/
	install -m 0644 config/grafana/riskd.json $(DESTDIR)$(PREFIX)/share/riskd/grafana/

clean:
	rm -rf build

# ---------------------------------------------------------------------------
# Fuzzing (tests/fuzz/): libFuzzer targets built with clang under ASan and
# UBSan, each linked with the library's sources, riskd's (except main.c) and the
# built-in detectors compiled for it. `make fuzz` runs each one for
# FUZZ_SECONDS on a copy of its seed corpus in build/fuzz/corpus-* (kept
# between runs; the repository is never written); crashes are saved as
# build/fuzz/crash-<target>-*. FUZZ_OPTS adds libFuzzer options.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30
FUZZ_OPTS ?=
FUZZ_DIR := build/fuzz
FUZZ_TARGETS := event config restore csv http
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -Iinclude -Idaemon -Itests/lib \
               $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS) $(RISKD_SRCS) $(BUILTIN_SRCS))
FUZZERS := $(patsubst %,$(FUZZ_DIR)/fuzz-%,$(FUZZ_TARGETS))

$(FUZZ_DIR)/obj/%.o: %.c $(HEADERS)
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
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(JOBS) -I{} sh -c \
	    'dict=; [ -f tests/fuzz/{}.dict ] && dict=-dict=tests/fuzz/{}.dict; \
	    echo "=== fuzz-{} ($(FUZZ_SECONDS) s)"; \
	    if $(FUZZ_DIR)/fuzz-{} -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-{}- \
	        $$dict $(FUZZ_OPTS) $(FUZZ_DIR)/corpus-{} >$(FUZZ_DIR)/fuzz-{}.log 2>&1; then \
	        grep -E "^Done|stat::number_of_executed_units" $(FUZZ_DIR)/fuzz-{}.log | sed "s/^/fuzz-{}: /"; \
	    else cat $(FUZZ_DIR)/fuzz-{}.log; echo "fuzz-{} failed"; exit 1; fi' || \
	    { echo "fuzzing failed"; exit 1; }
