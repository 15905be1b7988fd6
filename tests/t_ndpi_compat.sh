#!/usr/bin/env bash
# nDPI API compatibility: only nDPI 4.2 is installed here, so classify.c's branches for the
# API changes of 4.6, 4.10, 4.12, 4.14 and 5.0 are compiled (syntax only) against a
# stand-in header that mirrors those releases' signatures
# (tests/data/classify/ndpi-mock/ndpi_api.h). The real 4.2 build and tests run elsewhere.
source "$(dirname "$0")/lib/check.sh"
cd "$ROOT"
for v in "4 2" "4 6" "4 10" "4 12" "4 14" "5 0"; do
    set -- $v
    check "classify.c compiles against the nDPI $1.$2 API" cc -std=c11 -D_GNU_SOURCE -Wall \
        -Wextra -Wconversion -Werror -Iinclude -isystem tests/data/classify/ndpi-mock \
        -DMOCK_MAJOR="$1" -DMOCK_MINOR="$2" -fsyntax-only sensor/classify.c
done
finish
