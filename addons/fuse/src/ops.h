#pragma once

#include <fuse_lowlevel.h>

namespace tmount {

// The op table passed to fuse_session_new; its userdata must be a Session*.
const fuse_lowlevel_ops* LowlevelOps();

}  // namespace tmount
