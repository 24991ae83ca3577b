#!/usr/bin/env bash
# Regenerates the INSECURE test-prime fixture (public primes: tests, benchmarks, devnet only).
# openssl's safe-prime search is several times faster than a pure-GMP search on this hardware.
set -euo pipefail
pairs=${1:-20}
out=${2:-crates/engine/fixtures/INSECURE_TEST_PRIMES.txt}
{
  echo "# INSECURE TEST PRIMES — PUBLIC, FOR TESTS, BENCHMARKS AND THE DEVNET ONLY."
  echo "# Anyone can read these, so any Paillier key built from them protects nothing."
  echo "# 1536-bit safe primes, one per line; consecutive lines form a (p, q) pair."
  echo "# Regenerate with scripts/gen-insecure-primes.sh."
  for _ in $(seq 1 $((2 * pairs))); do openssl prime -generate -safe -bits 1536; done
} > "$out.tmp"
mv "$out.tmp" "$out"
