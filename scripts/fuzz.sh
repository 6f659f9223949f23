#!/usr/bin/env bash
# Builds the cargo-fuzz targets (appliance/fuzz) and runs each for a while.
#   scripts/fuzz.sh              every target, 60 s each
#   scripts/fuzz.sh 10           every target, 10 s each (the smoke run of scripts/test.sh)
#   scripts/fuzz.sh 600 inbound  one target, 10 minutes
# Finds are written to appliance/fuzz/artifacts/<target>/ and make this script fail.
# cargo-fuzz needs nightly features (sanitizers); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain provide them, so no second toolchain is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(smtp_session mime cms openpgp inbound portal)

say() { printf '==> %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
# A target dir of its own: sanitizer flags would otherwise rebuild the main one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
cd appliance/fuzz
say "building fuzz targets"
cargo fuzz build -O

# Real messages make good seeds for the MIME and inbound targets.
interop="${POSTERN_INTEROP:-../../../shared/interop}"
[ -d "$interop" ] || interop=/work/shared/interop
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  if [ -d "$interop" ] && { [ "$t" = mime ] || [ "$t" = inbound ]; }; then
    mkdir -p "seeds/$t"
    find "$interop" -name '*.eml' -exec cp -n {} "seeds/$t/" \;
    seeds=("seeds/$t")
  fi
  # Inputs that once found a bug (committed): every run replays them first.
  [ -d "regressions/$t" ] && seeds+=("regressions/$t")
  say "fuzzing $t for ${seconds}s"
  cargo fuzz run -O "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$seconds" -max_len=65536 2>&1 \
    | grep -E '^(Done|INFO: Seed|==[0-9]+==ERROR|thread .* panicked|SUMMARY)' || true
  if compgen -G "artifacts/$t/*" >/dev/null; then
    say "fuzz target $t found a failing input: appliance/fuzz/artifacts/$t/"
    exit 1
  fi
done
say "fuzzing done"
