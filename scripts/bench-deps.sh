#!/bin/sh
# Installs what hookrelay-bench uses to measure the machine's own HTTP ceiling, when missing:
# wrk (the load generator that is not hookrelay) and nginx (a receiver outside the bench's
# process). Debian or Ubuntu, with apt-get; run as root or with sudo available.
#
# The bench runs without them: without wrk it measures the ceiling with a plain hyper client
# of its own (and says so), without nginx it skips the nginx ceiling and refuses
# `--receiver nginx`. Neither the test suite nor CI needs them.
#
# nginx is only ever started by the bench itself, with a generated configuration on a free
# loopback port. Where the package would start the system's nginx on install, this script
# stops that one again unless it was already running.
set -eu

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"

if [ -z "$missing" ]; then
    echo "bench-deps: wrk and nginx are installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "bench-deps: need root (or sudo) to install:$missing" >&2
    exit 1
fi

nginx_was_running=no
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    nginx_was_running=yes
fi

echo "bench-deps: installing$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086 # one word per package
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing

# The bench needs no system nginx: stop one that the installation started.
if [ "$nginx_was_running" = no ] && [ -f /run/nginx.pid ] \
    && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    echo "bench-deps: stopping the nginx service the package started"
    $sudo nginx -s quit || true
fi

for tool in wrk nginx; do
    if command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ]; then
        echo "bench-deps: $tool ok"
    else
        echo "bench-deps: $tool still missing" >&2
        exit 1
    fi
done
