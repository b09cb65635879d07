#!/usr/bin/env bash
# The plugin's parameters: `--help` lists every key, bad keys and values are refused before
# nbdkit serves anything with the key named, and the install rule puts the plugin where
# nbdkit looks for plugins.
. "$(dirname "$0")/../lib/interop.sh"
interop_init
. "$(dirname "$0")/plugin.sh"

truncate -s 16M "$T/disk.img"
truncate -s 16M "$T/source.img"
CLONE=(source="$T/source.img" destination="$T/clone.img" metadata="$T/clone.meta")

KEYS=(config export source destination metadata file region-size fetch-window copy-on-read
  discard-passdown destination-zeroed discard-source-after-commit commit-interval
  source-timeout source-connections hydration batch max-inflight min-share rate profile-record
  profile-record-limit profile-record-time control readonly
  description threads blocking-threads log-level)

help_lists_every_key() {
  assert_status 0 "nbdkit PLUGIN --help" nbdkit "$PLUGIN" --help
  local out key
  out=$(cat "$T/last.out" "$T/last.err")
  assert_contains "$out" "plugin: hydrate" "plugin name in --help"
  for key in "${KEYS[@]}"; do
    grep -q "^$key=" <<<"$out" || fail "--help does not list '$key=': $out"
  done
}

dump_plugin() {
  assert_status 0 "nbdkit PLUGIN --dump-plugin" nbdkit "$PLUGIN" --dump-plugin
  local out
  out=$(cat "$T/last.out")
  assert_contains "$out" "name=hydrate" "plugin name"
  assert_contains "$out" "api_version=2" "plugin API version"
  assert_contains "$out" "max_thread_model=parallel" "thread model the plugin declares"
  assert_contains "$out" "has_after_fork=1" "after_fork callback"
  assert_contains "$out" "has_extents=1" "extents callback"
}

# refused WHAT EXPECTED_TEXT KEY=VALUE…: nbdkit must exit non-zero without serving, and its
# output must contain EXPECTED_TEXT (which names the key). REFUSE_WITHIN (seconds, default
# 30) bounds the wait.
refused() {
  local what=$1 expected=$2 status=0
  shift 2
  rm -f "$T/refused.sock"
  timeout --kill-after=5 "${REFUSE_WITHIN:-30}" nbdkit -f -U "$T/refused.sock" "$PLUGIN" "$@" >"$T/refused.log" 2>&1 ||
    status=$?
  [ "$status" -ne 0 ] || fail "$what: nbdkit accepted $*"
  [ "$status" -ne 124 ] && [ "$status" -ne 137 ] || fail "$what: nbdkit started serving with $*"
  assert_contains "$(cat "$T/refused.log")" "$expected" "$what: nbdkit's message"
}

bad_values_name_the_key() {
  refused "unknown key" "unknown key 'colour'" file="$T/disk.img" colour=blue
  refused "region size not a power of two" "region-size=96KiB: not a power of two" "${CLONE[@]}" region-size=96KiB
  refused "region size too small" "region-size=3KiB: out of range" "${CLONE[@]}" region-size=3KiB
  refused "decimal unit" "region-size=64KB: expected" "${CLONE[@]}" region-size=64KB
  refused "region size too large" "region-size=2GiB: out of range" "${CLONE[@]}" region-size=2GiB
  refused "fetch window below region" "fetch-window: fetch-window (64KiB) is smaller than region-size (128KiB)" \
    "${CLONE[@]}" region-size=128KiB fetch-window=64KiB
  refused "bad boolean" "copy-on-read=maybe: expected a boolean" "${CLONE[@]}" copy-on-read=maybe
  refused "duration without unit" "commit-interval=5: expected" "${CLONE[@]}" commit-interval=5
  refused "duration too short" "source-timeout=10ms: out of range" "${CLONE[@]}" source-timeout=10ms
  refused "no connections" "source-connections=0: expected a whole number from 1 to 64" "${CLONE[@]}" source-connections=0
  refused "too many connections" "source-connections=65" "${CLONE[@]}" source-connections=65
  refused "batch below a region" "batch=1KiB: out of range" "${CLONE[@]}" batch=1KiB
  refused "window below a batch" "max-inflight: max-inflight (1MiB) is smaller than batch (4MiB)" \
    "${CLONE[@]}" max-inflight=1MiB
  refused "rate" "rate=fast: expected bytes per second" "${CLONE[@]}" rate=fast
  refused "threads" "threads=300: expected a whole number from 0 to 256" file="$T/disk.img" threads=300
  refused "log level" "log-level=loud: expected debug, info, warn or error" file="$T/disk.img" log-level=loud
  refused "unsupported scheme" "source=http://example.com/disk" source=http://example.com/disk \
    destination="$T/clone.img" metadata="$T/clone.meta"
  refused "key given twice" "key 'region-size' was already given" "${CLONE[@]}" region-size=64KiB region_size=64KiB
  refused "empty path" "destination=: needs a path" source="$T/source.img" destination= metadata="$T/m"
  refused "long control socket path" "control=" file="$T/disk.img" control="/tmp/$(printf 'x%.0s' {1..120})"
}

bad_combinations_name_the_key() {
  refused "clone without metadata" "metadata=: missing" source="$T/source.img" destination="$T/clone.img"
  refused "plain and clone keys" "not allowed together with file=" file="$T/disk.img" source="$T/source.img"
  refused "no export at all" "no export given" region-size=64KiB
  refused "clone key on a plain export" "region-size=: applies to clone exports only" file="$T/disk.img" region-size=64KiB
  refused "discard a file source" "discard-source-after-commit: needs an NBD source" "${CLONE[@]}" \
    discard-source-after-commit=true
  refused "destination is metadata" "metadata=$T/same: the same path as destination=" \
    source="$T/source.img" destination="$T/same" metadata="$T/same"
}

config_file_errors_name_the_key() {
  refused "missing config file" "config=$T/nope.yaml" config="$T/nope.yaml"
  cat >"$T/bad.yaml" <<YAML
exports:
  - name: vm
    clone:
      source: $T/source.img
      destination: $T/clone.img
      metadata: $T/clone.meta
      region_size: 3KiB
YAML
  refused "bad value inside the config" "bad.yaml:7:20: exports[0].clone.region_size" config="$T/bad.yaml"
  cat >"$T/two.yaml" <<YAML
exports:
  - { name: a, path: $T/disk.img }
  - { name: b, path: $T/disk.img }
YAML
  refused "two exports, none chosen" "choose one with export=NAME" config="$T/two.yaml"
  refused "unknown export" "export=c: config=$T/two.yaml has no export of that name; it has: a, b" \
    config="$T/two.yaml" export=c
  refused "config and inline export" "source=: not allowed together with config=" \
    config="$T/two.yaml" export=a source="$T/source.img"
  # A bare parameter is config=.
  refused "bare parameter is config=" "config=$T/nope.yaml" "$T/nope.yaml"
}

files_checked_before_serving() {
  refused "missing plain file" "$T/missing.img" file="$T/missing.img"
  : >"$T/orphan.meta"
  head -c 4096 /dev/urandom >"$T/orphan.meta"
  refused "metadata without destination" "metadata $T/orphan.meta records hydrated regions, but destination $T/gone.img does not exist" \
    source="$T/source.img" destination="$T/gone.img" metadata="$T/orphan.meta"
  refused "destination directory missing" "directory $T/no-dir does not exist" \
    source="$T/source.img" destination="$T/no-dir/clone.img" metadata="$T/clone.meta"
  # The engine retries the connection for 30 s (SourceOptions::connect_timeout) before giving up.
  REFUSE_WITHIN=90 refused "unreachable source of a new clone" "cannot create a new clone while the source is unreachable" \
    source="nbd+unix:///?socket=$T/nobody.sock" destination="$T/new.img" metadata="$T/new.meta" \
    source-timeout=1s
}

# The install rule puts the plugin into nbdkit's plugin directory under the name nbdkit looks
# for (`nbdkit hydrate` = $plugindir/nbdkit-hydrate-plugin.so).
install_rule() {
  [ -n "${HYDRATE_BUILD_DIR:-}" ] || skip "HYDRATE_BUILD_DIR is not set"
  local plugindir installed
  plugindir=$(pkg-config --variable=plugindir nbdkit)
  [ -n "$plugindir" ] || fail "pkg-config does not know nbdkit's plugindir"
  DESTDIR="$T/dest" client cmake --install "$HYDRATE_BUILD_DIR" --component nbdkit-plugin \
    >"$T/install.log" 2>&1 || fail "cmake --install: $(cat "$T/install.log")"
  installed="$T/dest$plugindir/nbdkit-hydrate-plugin.so"
  [ -f "$installed" ] || fail "not installed as $installed: $(cat "$T/install.log")"
  assert_status 0 "the installed plugin loads" nbdkit "$installed" --dump-plugin
  assert_contains "$(cat "$T/last.out")" "name=hydrate" "installed plugin's name"
}

socket_activation() {
  assert_status 0 "nbdinfo through socket activation" \
    nbdinfo --size -- [ nbdkit "$PLUGIN" file="$T/disk.img" ]
  assert_eq "$(cat "$T/last.out")" "$((16 << 20))" "size through socket activation"
}

nbdkit_readonly_flag() {
  plugin_start ro -r file="$T/disk.img"
  assert_status 0 "nbdkit -r makes the export read-only" nbdinfo --is readonly "$URI"
}

run_case help_lists_every_key help_lists_every_key
run_case dump_plugin dump_plugin
run_case bad_values_name_the_key bad_values_name_the_key
run_case bad_combinations_name_the_key bad_combinations_name_the_key
run_case config_file_errors_name_the_key config_file_errors_name_the_key
run_case files_checked_before_serving files_checked_before_serving
run_case install_rule install_rule
run_case socket_activation socket_activation
run_case nbdkit_readonly_flag nbdkit_readonly_flag
interop_finish
