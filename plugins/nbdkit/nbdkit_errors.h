#pragma once

#include "engine/io_result.h"

namespace hydrate::nbdkit_plugin {

// The errno nbdkit should send for an engine failure. nbdkit turns errno into one of the few NBD
// error codes and sends EINVAL ("your request was wrong") for anything it does not know, so
// engine failures that are not the client's fault (a source timeout, a lost connection) are
// reported as EIO instead.
int nbd_errno_for(int error);

// Reports `failure` to nbdkit: the message through nbdkit_error (its log), the errno through
// nbdkit_set_error (what the client gets). Returns -1, what the data callbacks return.
int report_failure(const IoResult& failure);

}  // namespace hydrate::nbdkit_plugin
