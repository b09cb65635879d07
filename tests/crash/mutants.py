"""Deliberately broken copies of clone-engine source files, for tests/crash/mutation_check.

usage: mutants.py ENGINE_DIR OUT_DIR

Writes OUT_DIR/<mutant>/<file>.cpp and OUT_DIR/<mutant>/original (the file's path under
engine/). Each mutant breaks one invariant of DESIGN.md §3 the way a plausible bug would. An edit
whose text is no longer found in the engine is reported (exit 1): update the mutant to the
engine's new wording rather than dropping it.
"""
import os
import sys

# name: (file under engine/, what it breaks, [(old text, new text), ...])
MUTANTS = {
    "skip_flush_by_hand": (
        "clone/committer.cpp", "I2: commit without flushing the destination",
        [("  if (!skip_destination_flush_) {", "  if (false) {")]),
    "swap_after_flush": (
        "clone/committer.cpp",
        "I2: the transaction is taken after the destination flush, so bits whose data completed "
        "during the flush ride on a commit that does not cover it",
        [("  dirty_.store(false, std::memory_order_release);\n"
          "  RegionMap::Transaction transaction = map_.begin_commit();\n",
          "  dirty_.store(false, std::memory_order_release);\n"),
         ("      map_.finish_commit(std::move(transaction), false);\n      failed_.store(true);",
          "      failed_.store(true);"),
         ("  if (transaction.empty() && flags == written_flags) {",
          "  RegionMap::Transaction transaction = map_.begin_commit();\n"
          "  if (transaction.empty() && flags == written_flags) {")]),
    "discard_before_commit": (
        "clone/committer.cpp", "I6: post-commit hooks (source discard) run before the commit",
        [("  IoResult written = co_await store_.commit(map_, transaction, flags);",
          "  for (auto& hook : hooks_) co_await hook(transaction);\n"
          "  IoResult written = co_await store_.commit(map_, transaction, flags);"),
         ("    for (auto& hook : hooks_) co_await hook(transaction);\n  }", "  }")]),
    "fua_no_commit": (
        "clone/clone_volume.cpp", "I4: a FUA write returns without committing",
        [("  // FUA (I4): the data and the bits of any region this write hydrated are durable on "
          "return.\n  if (fua) co_return co_await committer_->commit();\n",
          "  (void)fua;\n")]),
    "bit_before_data": (
        "clone/clone_core.cpp", "I1: a fetched region's bit is set before its data is written",
        [("  IoResult r;\n  if (claim->on_demand)\n",
          "  {\n    std::lock_guard lock(table_.mutex());\n"
          "    if (map_.set(claim->first, claim->count) > 0) committer_.note_dirty();\n  }\n"
          "  IoResult r;\n  if (claim->on_demand)\n")]),
    "write_ignores_fetch": (
        "clone/clone_core.cpp", "I5: a client write does not wait for an in-flight fetch",
        [("    case ClaimPolicy::WaitFor::any:\n      return true;",
          "    case ClaimPolicy::WaitFor::any:\n      return other.kind == RegionClaim::Kind::write;")]),
    "no_bitmap_flush": (
        "metadata_store.cpp", "metadata: the superblock is written before the bitmap is flushed",
        [("  if (!transaction.empty()) {\n    IoResult flushed = co_await device_.flush();",
          "  if (false) {\n    IoResult flushed = co_await device_.flush();")]),
}


def main():
    engine, out = sys.argv[1], sys.argv[2]
    stale = 0
    for name, (path, what, edits) in MUTANTS.items():
        text = open(os.path.join(engine, path)).read()
        for old, new in edits:
            if old not in text:
                print(f"mutant {name} ({what}): text not found in engine/{path}:\n{old}",
                      file=sys.stderr)
                stale += 1
                break
            text = text.replace(old, new, 1)
        else:
            os.makedirs(os.path.join(out, name), exist_ok=True)
            with open(os.path.join(out, name, os.path.basename(path)), "w") as f:
                f.write(text)
            with open(os.path.join(out, name, "original"), "w") as f:
                f.write(path)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
