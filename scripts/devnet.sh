#!/usr/bin/env bash
# The devnet in one command on a fresh machine: installs m4 if missing (GMP, under cggmp21, is
# built from source and needs it), builds in release mode, and runs `cohort devnet` with its
# embedded defaults (5 nodes, a 3-of-5 key, API on 127.0.0.1:7100). Extra arguments go to
# `cohort devnet` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v m4 >/dev/null 2>&1; then
  echo "devnet: installing m4 (needed to build GMP)" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq m4 >/dev/null
fi
exec cargo run --release -q -p cohort-cli --features insecure-test-primes -- devnet "$@"
