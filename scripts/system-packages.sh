#!/usr/bin/env bash
# Install Debian packages that sahab uses, when they are missing.
# Usage: scripts/system-packages.sh PACKAGE...   (a package is skipped when already installed)
# Without root (and without sudo) it only says what is missing; with CI=true that is an error.
set -euo pipefail

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "sahab: please install: ${missing[*]} (no apt-get on this machine)" >&2
  [ "${CI:-}" = "true" ] && exit 1 || exit 0
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "sahab: please install as root: apt-get install ${missing[*]}" >&2
    [ "${CI:-}" = "true" ] && exit 1 || exit 0
  fi
fi
echo "sahab: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
