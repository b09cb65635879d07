#include "plugins/nbdkit/nbdkit_errors.h"

#include <nbdkit-plugin.h>

#include <cerrno>

namespace hydrate::nbdkit_plugin {

int nbd_errno_for(int error) {
  switch (error) {
    // What nbdkit maps to a matching NBD error, kept as they are.
    case EPERM:
    case EROFS:
    case EIO:
    case ENOMEM:
    case EINVAL:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case ESHUTDOWN:
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
    case EOVERFLOW:
      return error;
    default:
      return EIO;
  }
}

int report_failure(const IoResult& failure) {
  int error = failure.error != 0 ? failure.error : EIO;
  nbdkit_error("%s", failure.message.empty() ? "request failed" : failure.message.c_str());
  nbdkit_set_error(nbd_errno_for(error));
  return -1;
}

}  // namespace hydrate::nbdkit_plugin
