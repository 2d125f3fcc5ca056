#!/usr/bin/env bash
# Builds build-gpu/ (Release, CUDA provider) on the GPU machine, unpacking
# carried oneDNN .debs from .debs/ first; prints only errors and warnings.
# Source it to keep PATH and LD_LIBRARY_PATH:  . bench/gpu_build.sh
export PATH="/usr/local/cuda/bin:$PATH"
if ls .debs/*.deb >/dev/null 2>&1; then
  mkdir -p .debs/root
  for f in .debs/*.deb; do dpkg -x "$f" .debs/root; done
  export LD_LIBRARY_PATH="$PWD/.debs/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  FG_DNNL="-DDNNL_ROOT=$PWD/.debs/root/usr"
fi
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release ${FG_DNNL:-} >/dev/null &&
  cmake --build build-gpu -j "$(nproc)" 2>&1 | grep -E "error|warning"
[ -x build-gpu/facegraph ]
