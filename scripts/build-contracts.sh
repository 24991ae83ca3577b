#!/usr/bin/env bash
# Compiles contracts/ offline with a pinned solcjs from npm and writes contracts/out/<Name>.json
# ({abi, bytecode.object, deployedBytecode.object}), the artifacts the cohort-l1 bindings and the
# contract tests load.
#   bash scripts/build-contracts.sh          rebuild and overwrite contracts/out/
#   bash scripts/build-contracts.sh --check  rebuild into a temp dir; fail if it differs from contracts/out/
# The compiler input is contracts/solc-input.json (standard JSON: optimizer 200 runs, evmVersion
# shanghai, no metadata hash so the bytecode does not depend on comments or paths).
set -euo pipefail
cd "$(dirname "$0")/.."

SOLC_VERSION=0.8.23
SOLC_DIR=target/solc
SOLCJS="$SOLC_DIR/node_modules/solc"

if [ ! -f "$SOLCJS/package.json" ] || ! grep -q "\"version\": \"$SOLC_VERSION\"" "$SOLCJS/package.json"; then
  mkdir -p "$SOLC_DIR"
  npm install --no-audit --no-fund --prefix "$SOLC_DIR" "solc@$SOLC_VERSION" >/dev/null
fi

check=0
if [ "${1:-}" = "--check" ]; then check=1; fi
if [ $check = 1 ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  out=contracts/out
  rm -rf "$out"
  mkdir -p "$out"
fi

SOLCJS="$SOLCJS" SOLC_VERSION="$SOLC_VERSION" OUT="$out" node - <<'JS'
const fs = require('fs');
const path = require('path');
const solc = require(path.resolve(process.env.SOLCJS));
const want = process.env.SOLC_VERSION;
if (!solc.version().startsWith(want + '+')) {
  console.error(`solcjs is ${solc.version()}, want ${want}`);
  process.exit(1);
}
const root = path.resolve('contracts');
const input = JSON.parse(fs.readFileSync(path.join(root, 'solc-input.json'), 'utf8'));
for (const [name, src] of Object.entries(input.sources)) {
  if (src.urls) {
    input.sources[name] = { content: fs.readFileSync(path.join(root, src.urls[0]), 'utf8') };
  }
}
function findImports(p) {
  const file = path.resolve(root, p);
  if (!file.startsWith(root + path.sep)) return { error: `import outside contracts/: ${p}` };
  try { return { contents: fs.readFileSync(file, 'utf8') }; } catch (e) { return { error: `not found: ${p}` }; }
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
let failed = false;
for (const e of output.errors || []) {
  console.error(e.formattedMessage || e.message);
  failed = true; // warnings too: the committed artifacts come from a clean build
}
if (failed) process.exit(1);
const names = new Set();
for (const [file, contracts] of Object.entries(output.contracts)) {
  if (!file.startsWith('src/') || file.startsWith('src/interfaces/') || file.startsWith('src/utils/')) continue;
  for (const [name, c] of Object.entries(contracts)) {
    if (c.evm.bytecode.object === '') continue; // interfaces, abstract contracts
    if (names.has(name)) { console.error(`duplicate contract name ${name}`); process.exit(1); }
    names.add(name);
    const art = {
      abi: c.abi,
      bytecode: { object: '0x' + c.evm.bytecode.object },
      deployedBytecode: { object: '0x' + c.evm.deployedBytecode.object },
    };
    fs.writeFileSync(path.join(process.env.OUT, name + '.json'), JSON.stringify(art, null, 2) + '\n');
  }
}
console.error(`solc ${solc.version()}: ${[...names].sort().join(', ')}`);
JS

if [ $check = 1 ]; then
  if ! diff -r "$out" contracts/out >/dev/null; then
    echo "contracts/out/ is stale: run bash scripts/build-contracts.sh and commit the result" >&2
    diff -r "$out" contracts/out | head -20 >&2 || true
    exit 1
  fi
  echo "contracts/out/ matches a fresh build" >&2
fi
