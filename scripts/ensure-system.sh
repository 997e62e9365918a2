#!/usr/bin/env bash
# Installs (only when missing) the system packages that amqp-mesh's tests and benchmark need, then
# builds the qpid-jms test client (a no-op when up to date). Run by .ci/run and by `npm test`
# (package.json "pretest"); safe and quick (well under a second) to run again when all is there.
#
#   bash scripts/ensure-system.sh
#
# Debian/Ubuntu (apt). As root, or through sudo. Installing never starts a system service
# (rabbitmq-server's): the tests start private nodes themselves.
#
# AMQP_MESH_SKIP_JMS_BUILD=1 skips the qpid-jms client build (it is then built by the first test
# that needs it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# python3-qpid-proton: Proton test clients (test/support/proton, run with /usr/bin/python3)
# python3-uamqp: uAMQP (Azure's AMQP stack) test client (test/support/uamqp, /usr/bin/python3)
# openssl: test certificates (test/support/certs.ts)
# libqpid-proton11-dev, pkg-config, gcc: C load generator (bench/c)
# libqpid-proton11-dev-examples: Proton-C example broker/clients used as a reference peer
# rabbitmq-server: RabbitMQ 3.10 (rabbitmq_amqp1_0) for test/system/rabbitmq.test.ts and the
#   benchmark; the tests start their own private node (test/support/rabbit.ts), never the service
# postgresql: PostgreSQL 15 for haPolicy jdbc (test/support/postgres.ts starts private clusters
#   with initdb; the system cluster is not used)
# zookeeper: ZooKeeper 3.8 for haPolicy replication (the tests start private servers)
packages=(python3-qpid-proton python3-uamqp openssl libqpid-proton11-dev libqpid-proton11-dev-examples pkg-config gcc rabbitmq-server postgresql zookeeper)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

# Java for the qpid-jms client (test/support/jms): mvn and a JDK >= 17, whatever installed them
# (Debian packages, SDKMAN, a tarball on PATH); Debian's maven / openjdk-17-jdk-headless otherwise.
jdk_major() {
  local v
  v="$(javac -version 2>&1 | awk '{print $2}')" || return 1
  v="${v#1.}"
  echo "${v%%.*}"
}
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ! command -v javac >/dev/null 2>&1 || [ "$(jdk_major || echo 0)" -lt 17 ] 2>/dev/null; then
  missing+=(openjdk-17-jdk-headless)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> ensure-system: installing missing packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "error: not root and no sudo; cannot install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Installing a daemon package (rabbitmq-server) must not start its system service: we start
  # private nodes ourselves. policy-rc.d exit 101 ("action forbidden") makes invoke-rc.d and
  # deb-systemd-invoke skip the start. Only when none exists; removed right after the install
  # (and on any exit).
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    own_policy=1
    trap '[ -z "$own_policy" ] || "${SUDO[@]}" rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# temporary, from amqp-mesh scripts/ensure-system.sh: no service starts during apt-get install\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    echo "    $policy: service starts denied during the install"
  fi
  echo "    apt-get update"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
  echo "    apt-get install -y ${missing[*]}"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
  if [ -n "$own_policy" ]; then
    "${SUDO[@]}" rm -f "$policy"
    own_policy=
  fi
else
  echo "==> ensure-system: all system packages present (${packages[*]}, mvn, javac $(jdk_major))"
fi

# Fail here, with the reason, rather than in the middle of the tests.
/usr/bin/python3 -c 'import proton, uamqp' \
  || { echo "error: /usr/bin/python3 cannot import proton and uamqp" >&2; exit 1; }
for tool in openssl keytool mvn javac java; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found on PATH" >&2; exit 1; }
done

# The qpid-jms client: the first build downloads qpid-jms-client and the Maven plugins from Maven
# Central into ~/.m2 (about 15 s); afterwards a no-op until pom.xml or the sources change.
if [ -z "${AMQP_MESH_SKIP_JMS_BUILD:-}" ]; then
  jar="$(bash test/support/jms/build.sh "${AMQP_MESH_JMS_OUT:-}" | tail -n 1)" \
    || { echo "error: test/support/jms/build.sh failed (see above)" >&2; exit 1; }
  echo "==> ensure-system: qpid-jms test client $jar"
fi
