#!/usr/bin/env bash
# Installs the Debian packages this project needs, only those missing:
#   scripts/setup-debian.sh            # what building needs (liburing)
#   scripts/setup-debian.sh --test     # plus what the tests drive (initiators, tgt, fio, python3, bc,
#                                      # iproute2 for the network-namespace cluster test)
set -euo pipefail

packages=(liburing-dev)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(libiscsi-bin qemu-utils qemu-block-extra tgt fio python3 bc iproute2)
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then sudo="sudo"; fi
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "error: swift (6.1 or newer) is not on PATH; install a toolchain from swift.org" >&2
    exit 1
fi
