// Checks SnapshotCbt::extents (engine/snapshot_cbt.cpp), the qemu:dirty-bitmap:cbt extents a
// served snapshot reports: runs merged, flags 1 = dirty, clipped to the request and the device,
// max_extents honoured. Built and run by test_snapshot_cbt.sh; prints "N passed, N failed".
#include <cstdio>
#include <string>

#include "engine/snapshot_cbt.h"

namespace {

int passed = 0, failed = 0;

std::string text(const hydrate::ExtentList& list) {
  std::string out;
  for (const hydrate::Extent& e : list)
    out += std::to_string(e.length) + ":" + std::to_string(e.flags) + " ";
  return out;
}

void check(const char* name, const hydrate::SnapshotCbt& cbt, uint64_t offset, uint64_t length,
           size_t max_extents, const std::string& want) {
  hydrate::ExtentList out;
  cbt.extents(offset, length, max_extents, out);
  if (text(out) == want) {
    ++passed;
    std::printf("ok   %s\n", name);
  } else {
    ++failed;
    std::printf("FAIL %s: got '%s', want '%s'\n", name, text(out).c_str(), want.c_str());
  }
}

}  // namespace

int main() {
  hydrate::SnapshotCbt cbt;
  cbt.chunk_size = 4096;
  cbt.device_size = 10 * 4096 - 512;  // the last chunk is partial
  cbt.bits = {0b00110110, 0b10};      // dirty: 1 2 4 5 9

  check("whole device", cbt, 0, cbt.device_size, 100,
        "4096:0 8192:1 4096:0 8192:1 12288:0 3584:1 ");
  check("starts mid-chunk, clipped to the request", cbt, 5000, 10000, 100, "7288:1 2712:0 ");
  check("max_extents", cbt, 0, cbt.device_size, 2, "4096:0 8192:1 ");
  check("zero max_extents still answers one", cbt, 0, cbt.device_size, 0, "4096:0 ");
  check("clipped to the device", cbt, 9 * 4096, 100000, 5, "3584:1 ");
  check("inside one clean run", cbt, 6 * 4096 + 1, 100, 5, "100:0 ");

  hydrate::SnapshotCbt clean = cbt;
  clean.bits = {0, 0};
  check("nothing changed", clean, 0, clean.device_size, 100, "40448:0 ");

  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
