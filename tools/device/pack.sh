#!/usr/bin/env bash
# Packs what a GPU machine lent through the device tool needs and lacks into .node/ (git-ignored), which the
# tool's `carry` sends along. A call may send 64 MiB in all, the working tree (~39 MB, the CAAN demo weights are
# 21 MB of it) included, so everything is stripped and xz'd: this machine's Node binary (~22 MB), the native
# `webgpu` package for linux-x64 (~4.5 MB) and the GPU tests + bench bundled by tools/device/pack.mjs (no tsx,
# esbuild or other node_modules needed there). Then, in one device call:
#   run(command="bash tools/device/run.sh", carry=[".node", ".gl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d node_modules/webgpu ] || npm install --no-audit --no-fund
node tools/build.mjs >/dev/null
rm -rf .node && mkdir -p .node/stage/node_modules/webgpu/dist/linux-x64
strip -o .node/stage/node "$(command -v node)"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .node/stage/node_modules/webgpu/
strip -o .node/stage/node_modules/webgpu/dist/linux-x64/dawn.node node_modules/webgpu/dist/linux-x64/dawn.node
node tools/device/pack.mjs > .node/stage/bundles.txt
tar -cf .node/stage/bundles.tar -T .node/stage/bundles.txt dist
rm -f $(cat .node/stage/bundles.txt)
(cd .node/stage && tar -cf - node node_modules bundles.tar) | xz -T0 -9e > .node/pack.tar.xz
rm -rf .node/stage
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -q >/dev/null
  (cd .gl && apt-get $o download libvulkan1 >/dev/null 2>&1)
fi
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carry=$(du -cb .node .gl | tail -1 | cut -f1)
echo "carry .node + .gl: $((carry / 1048576)) MiB; with the tracked tree $(((tree + carry) / 1048576)) MiB of the 64 MiB a call may send"
[ $((tree + carry)) -lt $((64 * 1048576)) ] || { echo "too large for one device call"; exit 1; }
