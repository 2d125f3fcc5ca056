#!/usr/bin/env bash
# GPU tests run only where a GPU is present (the device machine: tests/gpu/run.sh).
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "skipped: no GPU"
  exit 77
fi
exec bash "$(dirname "$0")/run.sh"
