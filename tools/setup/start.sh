#!/usr/bin/env bash
# The demo command (README: `npm start`). Installs what it needs, as `npm test` does (npm packages, a software
# Vulkan driver when no GPU adapter exists), then runs `sketchgpu demo` with any arguments given.
set -uo pipefail
cd "$(dirname "$0")/../.."
# onnxruntime-node (dev dependency, the bench's ORT peer): skip its CUDA download, which fails offline.
export ONNXRUNTIME_NODE_INSTALL=skip
[ -d node_modules/webgpu ] && [ -d node_modules/esbuild ] || npm install --no-audit --no-fund || exit 1
bash tools/setup/ensure-vulkan.sh || exit 1
exec node bin/sketchgpu.js demo "$@"
