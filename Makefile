# Spanprint build. `make` builds build/spanprint; `make test` builds every module with
# ASan/UBSan, runs the unit tests (tests/test_*.c, one binary each), the golden and CLI tests
# (tests/*.sh) and each fuzz target (tests/fuzz_*.c) briefly; `make bench` runs the benchmark.
# New modules and tests are picked up by wildcard: add sensor/foo.c, include/foo.h and
# tests/test_foo.c and nothing here changes.

CC       ?= cc
PKGS     := libpcap libndpi libmaxminddb rdkafka libcrypto libmicrohttpd
VERSION  := 0.1.0
GITREV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS)))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm

WARN     := -Wall -Wextra -Wconversion -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Werror
CFLAGS   ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude $(PKG_CFLAGS) \
               -DSN_VERSION='"$(VERSION)"' -DSN_GITREV='"$(GITREV)"' -MMD -MP
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(wildcard sensor/*.c)
LIB_SRCS := $(filter-out sensor/main.c,$(SRCS))
OBJS     := $(SRCS:sensor/%.c=build/obj/%.o)
LIB_OBJS := $(LIB_SRCS:sensor/%.c=build/obj/%.o)
SAN_LIB_OBJS := $(LIB_SRCS:sensor/%.c=build/asan/%.o)
SAN_OBJS := $(SRCS:sensor/%.c=build/asan/%.o)
TESTS    := $(patsubst tests/%.c,build/tests/%,$(wildcard tests/test_*.c))
FUZZERS  := $(patsubst tests/%.c,build/fuzz/%,$(wildcard tests/fuzz_*.c))
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

# Quiet by default; `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all test unit fuzz bench clean format

all: build/spanprint

build/spanprint: $(OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

build/obj/%.o: sensor/%.c | build/obj
	@echo "  CC    $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

build/asan/%.o: sensor/%.c | build/asan
	@echo "  CC    $< (asan)"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c -o $@ $<

# The sanitizer build of the binary, used by the CLI and golden tests.
build/spanprint-asan: $(SAN_OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) -O1 -g $(SAN) -o $@ $^ $(PKG_LIBS)

build/tests/%: tests/%.c $(SAN_LIB_OBJS) | build/tests
	@echo "  TEST  $@"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -Itests -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS) $(CMOCKA_LIBS)

# libFuzzer targets need clang; they link the sanitizer objects built by clang too.
FUZZ_CC := clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) -g -O1 \
              -fsanitize=fuzzer,address,undefined -DSN_VERSION='"$(VERSION)"' -DSN_GITREV='"x"'
build/fuzz/%: tests/%.c tests/fuzz_entries.h $(LIB_SRCS) | build/fuzz
	@echo "  FUZZ  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS)

build/obj build/asan build/tests build/fuzz:
	mkdir -p $@

unit: $(TESTS)
fuzz: $(FUZZERS)

test: build/spanprint build/spanprint-asan $(TESTS) $(FUZZERS)
	tests/run_all.sh

bench: build/spanprint
	tests/bench/run.sh

clean:
	rm -rf build

format:
	clang-format -i sensor/*.c include/*.h tests/*.c

-include $(wildcard build/obj/*.d build/asan/*.d build/tests/*.d)

# `make install [PREFIX=/usr/local] [DESTDIR=/staging]` installs the binary, the shipped rules,
# the example config and the systemd unit (deploy/README.md). The installed binary is linked
# apart in $(INSTALL_BUILD), with config.c compiled for -DSN_DATADIR="$(DATADIR)" so that it
# finds $(DATADIR)/rules; build/spanprint keeps finding the checkout's rules/. Changing DATADIR
# (or PREFIX) recompiles that one file. To build as yourself and install as root:
#     make PREFIX=/usr build/install/spanprint && sudo make install PREFIX=/usr
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
DATADIR        ?= $(PREFIX)/share/spanprint
DOCDIR         ?= $(PREFIX)/share/doc/spanprint
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL        ?= install
INSTALL_BUILD  ?= build/install
DATADIR_CFLAGS  = -DSN_DATADIR='"$(DATADIR)"'

.PHONY: install sn-install-force
sn-install-force:

$(INSTALL_BUILD):
	mkdir -p $@

# Rewritten only when DATADIR differs from the last build's, so config.o follows DATADIR.
$(INSTALL_BUILD)/datadir: sn-install-force | $(INSTALL_BUILD)
	$(Q)printf '%s\n' '$(DATADIR)' | cmp -s - $@ || printf '%s\n' '$(DATADIR)' >$@

$(INSTALL_BUILD)/config.o: sensor/config.c $(INSTALL_BUILD)/datadir | $(INSTALL_BUILD)
	@echo "  CC    $< (SN_DATADIR=$(DATADIR))"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(DATADIR_CFLAGS) -c -o $@ $<

$(INSTALL_BUILD)/spanprint: $(filter-out build/obj/config.o,$(OBJS)) $(INSTALL_BUILD)/config.o
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

install: $(INSTALL_BUILD)/spanprint
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/rules $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/spanprint
	$(INSTALL) -m 0755 $(INSTALL_BUILD)/spanprint $(DESTDIR)$(BINDIR)/spanprint
	for f in rules/*; do \
	    [ ! -f "$$f" ] || $(INSTALL) -m 0644 "$$f" $(DESTDIR)$(DATADIR)/rules/ || exit 1; \
	done
	$(INSTALL) -m 0644 deploy/spanprint.conf $(DESTDIR)$(DOCDIR)/spanprint.conf.example
	$(INSTALL) -m 0644 deploy/README.md $(DESTDIR)$(DOCDIR)/README.deploy.md
	sed -e 's|/usr/local/bin/spanprint|$(BINDIR)/spanprint|g' \
	    -e 's|/usr/local/share/doc/spanprint|$(DOCDIR)|g' \
	    -e 's|/etc/spanprint/|$(SYSCONFDIR)/spanprint/|g' \
	    deploy/systemd/spanprint.service >$(DESTDIR)$(SYSTEMDUNITDIR)/spanprint.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/spanprint.service
	@# An existing config is the administrator's: never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/spanprint/spanprint.conf ] || \
	    $(INSTALL) -m 0644 deploy/spanprint.conf $(DESTDIR)$(SYSCONFDIR)/spanprint/spanprint.conf

-include $(INSTALL_BUILD)/config.d
