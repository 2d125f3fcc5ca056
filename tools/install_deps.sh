#!/usr/bin/env bash
# Installs what facegraph needs to build and test, on Debian/Ubuntu, as root
# (or with sudo). Safe to rerun: it installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

debs="cmake make gcc libdnnl-dev libjpeg-dev libpng-dev"
[ "${1:-}" = "--test" ] && debs="$debs libonnx-testdata valgrind"
missing=""
for p in $debs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  if ! python3 -c "import onnx, onnxruntime, numpy, PIL" 2>/dev/null; then
    echo "installing Python test packages: onnx onnxruntime numpy pillow"
    python3 -m pip install -q --disable-pip-version-check onnx onnxruntime numpy pillow
  fi
fi
