#!/usr/bin/env bash
# Packs what a GPU machine lent through the device tool needs and lacks into .node/ (git-ignored), which the
# tool's `carry` sends along. A call may send 64 MiB in all, the working tree (~28 MB, the CAAN demo weights are
# 8.4 MB of it) included, so everything is stripped and xz'd: this machine's Node binary (~22 MB), the native
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
# The ONNX Runtime WebGPU peer (optional, ~12 MiB xz'd: onnxruntime-node's linux-x64 library and its JS) in .ort/,
# carried only when the call can afford it: with the 8.4 MB CAAN demo weights in the tree it cannot (0.6 MB over), so run.sh's
# bench needs none of them and a call that carries .ort moves them aside first (see docs/performance.md).
rm -rf .ort
if [ -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 ]; then
  mkdir -p .ort
  tar -cf - node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist \
    node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist node_modules/onnxruntime-node/bin/napi-v6/linux/x64 \
    | xz -T0 -6 > .ort/ort.tar.xz
fi
if ! ls .gl/libglx0_*.deb >/dev/null 2>&1; then  # the NVIDIA ICD needs libglvnd's GLX beside the loader
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -q >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
fi
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -cb .node .gl | tail -1 | cut -f1)
echo "carry .node + .gl: $((carry / 1048576)) MiB; with the tracked tree $(((tree + carry) / 1048576)) MiB of the 64 MiB a call may send"
if [ -d .ort ]; then
  ort=$(du -cb .ort | tail -1 | cut -f1); caan=$(du -cb weights/caan-*.safetensors 2>/dev/null | tail -1 | cut -f1)
  echo "carry .ort too (the ONNX Runtime peer, $((ort / 1048576)) MiB): $(((tree + carry + ort - ${caan:-0}) / 1048576)) MiB with weights/caan-*.safetensors moved aside"
fi
[ $((tree + carry)) -lt $((64 * 1048576)) ] || { echo "too large for one device call"; exit 1; }
