#pragma once

#include <string>

namespace tmount {

struct MountpointCheck {
  // The path to mount on, with symlinks in its parent resolved (what
  // /proc/mounts will show); empty when `error` is set.
  std::string path;
  std::string error;
};

// JS thread, before mounting. Refuses a path that is already a mount point
// by reading the mount table instead of touching the path: if that mount is
// served by this very process, a stat() on it would wait for the JS thread
// that is making the call, forever. The parent directory is resolved with
// realpath(), so a mountpoint below a FUSE mount of this same process would
// still deadlock; callers must not do that.
MountpointCheck CheckMountpoint(const std::string& path);

}  // namespace tmount
