#!/usr/bin/env bash
# Install the brokers of the test matrix (docs/brokers.md), idempotently:
#   - RabbitMQ (with its MQTT plugin) and ejabberd (mod_mqtt) from the OS packages, WITHOUT starting their
#     system services (the tests start private nodes on free loopback ports; a system service is stopped);
#   - aedes 1.x from npm into .brokers/node_modules (git-ignored);
#   - amqtt from PyPI into a venv of its own, .brokers/amqtt-venv, so its dependencies stay out of the
#     workspace environment.
# Mosquitto is installed by tools/ensure_mosquitto.py (the main test suite needs it too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
CACHE="$ROOT/.brokers"
mkdir -p "$CACHE"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

have_debs() {
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || return 1
  done
}

if ! have_debs rabbitmq-server ejabberd; then
  echo "== installing rabbitmq-server and ejabberd from the OS packages (services not started)"
  # policy-rc.d exit 101 tells invoke-rc.d / deb-systemd-invoke not to start anything during the install.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  cleanup() { if [ -n "$created_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends rabbitmq-server ejabberd
  cleanup
  trap - EXIT
fi

# Should a service have been started anyway (a host without policy-rc.d support), stop it: the tests never
# use a system broker, and a system epmd/beam on default ports would only confuse them.
for service in rabbitmq-server ejabberd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    echo "== stopping the system service $service"
    $SUDO systemctl stop "$service" || true
    $SUDO systemctl disable "$service" >/dev/null 2>&1 || true
  fi
done

if [ ! -f "$CACHE/node_modules/aedes/package.json" ]; then
  echo "== installing aedes@1 from npm into .brokers/node_modules"
  npm install --silent --no-audit --no-fund --prefix "$CACHE" aedes@1 >/dev/null
fi

if [ ! -x "$CACHE/amqtt-venv/bin/amqtt" ]; then
  echo "== installing amqtt into its own venv .brokers/amqtt-venv"
  rm -rf "$CACHE/amqtt-venv"
  python3 -m venv "$CACHE/amqtt-venv"
  "$CACHE/amqtt-venv/bin/python" -m pip install --quiet "amqtt>=0.11,<0.13"
fi

echo "== brokers: rabbitmq $(dpkg-query -W -f='${Version}' rabbitmq-server)," \
  "ejabberd $(dpkg-query -W -f='${Version}' ejabberd)," \
  "aedes $(node -p "require('$CACHE/node_modules/aedes/package.json').version")," \
  "amqtt $("$CACHE/amqtt-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("amqtt"))')"
