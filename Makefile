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

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Werror
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
build/fuzz/%: tests/%.c $(LIB_SRCS) | build/fuzz
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
