#include "nbd-server/protocol.h"

namespace hydrate::nbd::proto {

const char* option_name(uint32_t option) {
  switch (option) {
    case kOptExportName:
      return "EXPORT_NAME";
    case kOptAbort:
      return "ABORT";
    case kOptList:
      return "LIST";
    case 4:
      return "PEEK_EXPORT";
    case kOptStartTls:
      return "STARTTLS";
    case kOptInfo:
      return "INFO";
    case kOptGo:
      return "GO";
    case kOptStructuredReply:
      return "STRUCTURED_REPLY";
    case kOptListMetaContext:
      return "LIST_META_CONTEXT";
    case kOptSetMetaContext:
      return "SET_META_CONTEXT";
    case 11:
      return "EXTENDED_HEADERS";
  }
  return "unknown";
}

const char* command_name(uint16_t command) {
  switch (command) {
    case kCmdRead:
      return "READ";
    case kCmdWrite:
      return "WRITE";
    case kCmdDisc:
      return "DISC";
    case kCmdFlush:
      return "FLUSH";
    case kCmdTrim:
      return "TRIM";
    case kCmdCache:
      return "CACHE";
    case kCmdWriteZeroes:
      return "WRITE_ZEROES";
    case kCmdBlockStatus:
      return "BLOCK_STATUS";
  }
  return "unknown";
}

const char* error_name(uint32_t nbd_error) {
  switch (nbd_error) {
    case 0:
      return "OK";
    case kEperm:
      return "EPERM";
    case kEio:
      return "EIO";
    case kEnomem:
      return "ENOMEM";
    case kEinval:
      return "EINVAL";
    case kEnospc:
      return "ENOSPC";
    case kEoverflow:
      return "EOVERFLOW";
    case kEnotsup:
      return "ENOTSUP";
    case kEshutdown:
      return "ESHUTDOWN";
  }
  return "unknown";
}

}  // namespace hydrate::nbd::proto
