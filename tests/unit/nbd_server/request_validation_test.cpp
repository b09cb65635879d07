#include "nbd-server/request_validation.h"

#include <gtest/gtest.h>

#include "nbd-server/protocol.h"

namespace hydrate::nbd {
namespace {

using namespace proto;

RequestLimits writable() {
  RequestLimits l;
  l.size = 1 << 20;
  l.transmission_flags = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim |
                         kFlagSendWriteZeroes | kFlagSendFastZero | kFlagSendDf | kFlagSendCache;
  l.min_block = 1;
  l.max_payload = 32u << 20;
  l.structured_replies = true;
  l.meta_contexts_selected = true;
  return l;
}

RequestHeader req(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0) {
  RequestHeader h;
  h.type = type;
  h.offset = offset;
  h.length = length;
  h.flags = flags;
  return h;
}

uint32_t error_of(const RequestHeader& h, const RequestLimits& l) {
  return check_request(h, l).error;
}

TEST(RequestValidation, AcceptsWellFormedRequests) {
  auto l = writable();
  EXPECT_EQ(error_of(req(kCmdRead, 0, 4096), l), 0u);
  EXPECT_EQ(error_of(req(kCmdRead, (1 << 20) - 1, 1, kCmdFlagDf), l), 0u);
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 1 << 20, kCmdFlagFua), l), 0u);
  EXPECT_EQ(error_of(req(kCmdFlush, 0, 0), l), 0u);
  EXPECT_EQ(error_of(req(kCmdTrim, 4096, 4096, kCmdFlagFua), l), 0u);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 0, 8192, kCmdFlagNoHole | kCmdFlagFastZero), l), 0u);
  EXPECT_EQ(error_of(req(kCmdCache, 0, 1 << 20), l), 0u);
  EXPECT_EQ(error_of(req(kCmdBlockStatus, 0, 1 << 20, kCmdFlagReqOne), l), 0u);
  EXPECT_EQ(error_of(req(kCmdRead, 1 << 20, 0), l), 0u);  // empty read at the end
}

TEST(RequestValidation, UnknownCommandsAndFlagsAreEinval) {
  auto l = writable();
  auto check = check_request(req(99, 0, 0), l);
  EXPECT_EQ(check.error, kEinval);
  EXPECT_NE(check.reason.find("unknown command 99"), std::string::npos);
  EXPECT_EQ(error_of(req(kCmdRead, 0, 512, 1u << 6), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdRead, 0, 512, kCmdFlagNoHole), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 512, kCmdFlagDf), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdTrim, 0, 512, kCmdFlagFastZero), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdRead, 0, 512, kCmdFlagReqOne), l), kEinval);
}

TEST(RequestValidation, FlagsNeedTheirTransmissionFlag) {
  auto l = writable();
  l.transmission_flags &= ~(kFlagSendFua | kFlagSendDf | kFlagSendFastZero);
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 512, kCmdFlagFua), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdRead, 0, 512, kCmdFlagDf), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), l), kEinval);
}

TEST(RequestValidation, ReadOnlyExportsRefuseWritesWithEperm) {
  auto l = writable();
  l.transmission_flags = kFlagHasFlags | kFlagReadOnly | kFlagSendFlush;
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 512), l), kEperm);
  EXPECT_EQ(error_of(req(kCmdTrim, 0, 512), l), kEperm);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 0, 512), l), kEperm);
  EXPECT_EQ(error_of(req(kCmdWrite, 1 << 30, 512), l), kEperm);  // EPERM before bounds
  EXPECT_EQ(error_of(req(kCmdRead, 0, 512), l), 0u);
}

TEST(RequestValidation, UnsupportedCommandsAreEinval) {
  auto l = writable();
  l.transmission_flags = kFlagHasFlags;
  for (uint16_t cmd : {kCmdFlush, kCmdTrim, kCmdWriteZeroes, kCmdCache})
    EXPECT_EQ(error_of(req(cmd, 0, cmd == kCmdFlush ? 0 : 512), l), kEinval) << command_name(cmd);
}

TEST(RequestValidation, OutOfRangeIsEinvalForReadsAndEnospcForWrites) {
  auto l = writable();
  EXPECT_EQ(error_of(req(kCmdRead, (1 << 20) - 1, 2), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdTrim, 1 << 20, 1), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdCache, 2 << 20, 0), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdBlockStatus, (1 << 20) - 512, 1024), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWrite, (1 << 20) - 1, 2), l), kEnospc);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 1 << 20, 512), l), kEnospc);
  // offset + length wrapping around 2^64 must not pass.
  EXPECT_EQ(error_of(req(kCmdRead, UINT64_MAX - 10, 4096), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWrite, UINT64_MAX - 10, 4096), l), kEnospc);
}

TEST(RequestValidation, MisalignedRequestsAreEinval) {
  auto l = writable();
  l.min_block = 512;
  EXPECT_EQ(error_of(req(kCmdRead, 1, 512), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWrite, 512, 100), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdTrim, 512, 512), l), 0u);
}

TEST(RequestValidation, OversizedReadsAndWritesAreEinval) {
  auto l = writable();
  l.size = 1ull << 40;
  l.max_payload = 1 << 20;
  EXPECT_EQ(error_of(req(kCmdRead, 0, (1 << 20) + 1), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 2 << 20), l), kEinval);
  // Commands without payload may be longer than the payload limit.
  EXPECT_EQ(error_of(req(kCmdTrim, 0, 64 << 20), l), 0u);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 0, 64 << 20), l), 0u);
}

TEST(RequestValidation, WritePayloadAbove32MiBIsEoverflow) {
  auto l = writable();
  l.size = 1ull << 40;
  const uint32_t limit = 32u << 20;
  EXPECT_EQ(error_of(req(kCmdWrite, 0, limit), l), 0u);
  auto check = check_request(req(kCmdWrite, 0, limit + 1), l);
  EXPECT_EQ(check.error, kEoverflow);
  EXPECT_NE(check.reason.find("exceeds the 32 MiB"), std::string::npos);
  // Only WRITE carries a payload: a READ that large is an ordinary EINVAL, and commands
  // without payload are not limited.
  EXPECT_EQ(error_of(req(kCmdRead, 0, limit + 1), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdTrim, 0, limit + 1), l), 0u);
  EXPECT_EQ(error_of(req(kCmdWriteZeroes, 0, limit + 1), l), 0u);
}

TEST(RequestValidation, EoverflowComesBeforeEveryOtherWriteCheck) {
  // Whatever else is wrong, an oversized WRITE is answered EOVERFLOW (its payload is
  // discarded, never buffered).
  const uint32_t length = (32u << 20) + 4096;
  auto l = writable();
  l.max_payload = 1 << 20;
  EXPECT_EQ(error_of(req(kCmdWrite, 0, length), l), kEoverflow);  // not max_payload's EINVAL
  EXPECT_EQ(error_of(req(kCmdWrite, 0, length, kCmdFlagDf), l), kEoverflow);  // bad flag
  EXPECT_EQ(error_of(req(kCmdWrite, 1 << 20, length), l), kEoverflow);        // past the end
  l.min_block = 512;
  EXPECT_EQ(error_of(req(kCmdWrite, 1, length), l), kEoverflow);  // misaligned
  l = writable();
  l.transmission_flags = kFlagHasFlags | kFlagReadOnly;
  EXPECT_EQ(error_of(req(kCmdWrite, 0, length), l), kEoverflow);  // read-only
  EXPECT_EQ(error_of(req(kCmdWrite, 0, 512), l), kEperm);
}

TEST(RequestValidation, FlushMustBeEmpty) {
  auto l = writable();
  EXPECT_EQ(error_of(req(kCmdFlush, 4096, 0), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdFlush, 0, 1), l), kEinval);
}

TEST(RequestValidation, BlockStatusNeedsStructuredRepliesAndAContext) {
  auto l = writable();
  l.meta_contexts_selected = false;
  EXPECT_NE(check_request(req(kCmdBlockStatus, 0, 512), l).reason.find("metadata context"),
            std::string::npos);
  l = writable();
  l.structured_replies = false;
  EXPECT_EQ(error_of(req(kCmdBlockStatus, 0, 512), l), kEinval);
  EXPECT_EQ(error_of(req(kCmdBlockStatus, 0, 0), writable()), kEinval);
}

}  // namespace
}  // namespace hydrate::nbd
