#!/usr/bin/env bash
# Make sure dawn.node finds a WebGPU adapter. With a GPU and its driver this does nothing. Without one, on
# Debian bookworm, it installs Mesa's lavapipe (a CPU Vulkan driver) from bookworm-backports: bookworm's own
# Mesa 22.3 lavapipe lacks a feature Dawn requires (../shared/docs/platform.md). The backports entry is
# derived from the machine's existing Debian apt source (same mirror, same keyring); no host is named here.
set -uo pipefail
cd "$(dirname "$0")/../.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

probe() { node tools/setup/probe-adapter.mjs 2>/dev/null; }

if name=$(probe); then
  echo "WebGPU adapter: $name"
  exit 0
fi

echo "No WebGPU adapter found; installing a software Vulkan driver (Mesa lavapipe from bookworm-backports)..."
. /etc/os-release 2>/dev/null || true
if [ "${VERSION_CODENAME:-}" != "bookworm" ] || ! command -v apt-get >/dev/null; then
  echo "error: no GPU driver answered, and automatic install only knows Debian bookworm." >&2
  echo "hint: install your GPU's Vulkan driver, or Mesa >= 24 lavapipe (package mesa-vulkan-drivers), then retry." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: installing the driver needs root (apt-get)." >&2; exit 1
  fi
fi

bp=/etc/apt/sources.list.d/sketchgpu-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: copy the first stanza that serves bookworm, with Suites replaced.
    awk 'BEGIN{RS="";ORS="\n\n"} /Suites:[^\n]*bookworm( |\n|$)/ && !done {print; done=1}' /etc/apt/sources.list.d/debian.sources \
      | sed -E 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$bp" >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    line=$(grep -E '^deb [^#]* bookworm main' /etc/apt/sources.list | head -n1)
    [ -n "$line" ] && echo "${line/ bookworm / bookworm-backports }" | $SUDO tee /etc/apt/sources.list.d/sketchgpu-backports.list >/dev/null
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || { echo "error: apt-get update failed" >&2; exit 1; }
$SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null || { echo "error: installing mesa-vulkan-drivers failed" >&2; exit 1; }

if name=$(probe); then
  echo "WebGPU adapter: $name"
  exit 0
fi
echo "error: lavapipe was installed but dawn.node still finds no adapter." >&2
exit 1
