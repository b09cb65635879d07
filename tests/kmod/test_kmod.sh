#!/usr/bin/env bash
# ctest entry (label kmod): the whole qemu suite; its exit status is the test's.
exec "$(dirname "${BASH_SOURCE[0]}")/run" "$@"
