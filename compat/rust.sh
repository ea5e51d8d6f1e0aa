#!/usr/bin/env bash
# zookeeper-client 0.9.3 (crates.io; an async Rust client written from the
# protocol) against HOST:PORT: compat/rust/src/main.rs, built here with
# cargo (debug; dependencies pinned by compat/rust/Cargo.lock).
#   compat/rust.sh HOST:PORT
# The build goes to $COMPAT_RUST_TARGET (default
# ~/.cache/paddock/compat-rust-target), apart from paddock's own target dir.
set -u
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 HOST:PORT" >&2; exit 2; }
compat_run_dir
target="${COMPAT_RUST_TARGET:-$HOME/.cache/paddock/compat-rust-target}"
compat_lock rust
if ! (cd "$COMPAT_DIR/rust" && CARGO_TARGET_DIR="$target" timeout 900 cargo build --locked --quiet) \
    >"$COMPAT_RUN_DIR/rust.build" 2>&1; then
    compat_unlock
    fail rust.build "cargo build of compat/rust failed: $(tail -3 "$COMPAT_RUN_DIR/rust.build" | tr '\n' '|')"
    exit 1
fi
compat_unlock
timeout 300 "$target/debug/paddock-compat-rust" "$1" 2>"$COMPAT_RUN_DIR/rust.stderr"
rc=$?
[ $rc -eq 124 ] && fail rust.complete "the checks did not finish in 300 s"
exit $rc
