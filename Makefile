# riskd - plain GNU Makefile.
#
#   make                 build/riskd, build/riskctl? (no), build/plugins/*.so
#   make test            build and run the whole suite (unit + integration)
#   make SAN=1 test      the same under AddressSanitizer + UBSan (build/san/)
#   make check           alias of test
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

PKGS := libuv hiredis jansson
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
RK_LIBS := $(PKG_LIBS) -ldl -lm

DAEMON_SRCS := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
BUILTIN_SRCS := $(wildcard detectors/*.c)
PLUGIN_SRCS := $(wildcard detectors/plugins/*.c)
TEST_SRCS := $(wildcard tests/test-*.c)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)

LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(DAEMON_SRCS) $(BUILTIN_SRCS))
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TESTLIB_SRCS))
PLUGINS := $(patsubst detectors/plugins/%.c,$(BUILD)/plugins/%.so,$(PLUGIN_SRCS))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(filter-out tests/bench/gen.c,$(wildcard tests/bench/*.c)))
TEST_PLUGINS := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))

.PHONY: all test check install clean bench fuzz
.SECONDARY:
all: $(BUILD)/riskd $(PLUGINS)

$(BUILD)/obj/%.o: %.c $(wildcard include/riskd/*.h) daemon/internal.h $(wildcard tests/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(RK_CFLAGS) -c $< -o $@

$(BUILD)/libriskd.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/riskd: $(BUILD)/obj/daemon/main.o $(BUILD)/libriskd.a
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

test check: all $(TESTS) $(TEST_PLUGINS)
	BUILD=$(BUILD) sh tests/run.sh $(TESTS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/obj/tests/bench/gen.o
	@mkdir -p $(dir $@)
	$(CC) $(RK_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread -lm

bench: all $(BENCH_BINS)
	BUILD=$(BUILD) sh tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/riskd/plugins
	install -m 0755 $(BUILD)/riskd $(DESTDIR)$(PREFIX)/bin/riskd
	for p in $(PLUGINS); do install -m 0644 $$p $(DESTDIR)$(PREFIX)/lib/riskd/plugins/; done
	install -d $(DESTDIR)$(PREFIX)/include/riskd
	install -m 0644 include/riskd/*.h $(DESTDIR)$(PREFIX)/include/riskd/
	install -d $(DESTDIR)$(SYSCONFDIR)/riskd
	install -m 0644 config/riskd.json $(DESTDIR)$(SYSCONFDIR)/riskd/riskd.json
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0644 systemd/riskd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/riskd.service

clean:
	rm -rf build
