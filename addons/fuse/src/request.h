#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

namespace tmount {

enum class Op {
  kLookup,
  kGetattr,
  kSetattr,
  kReadlink,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRename,
  kLink,
  kOpen,
  kRead,
  kWrite,
  kFlush,
  kRelease,
  kFsync,
  kOpendir,
  kReaddir,
  kReleasedir,
  kFsyncdir,
  kStatfs,
  kCreate,
  kAccess,
  kForget,
};

// The name JS sees in `request.op`.
const char* OpName(Op op);

// Owns `data` (malloc'd) until it is handed to a JS Buffer.
struct WriteData {
  char* bytes = nullptr;
  size_t size = 0;

  WriteData() = default;
  WriteData(const WriteData&) = delete;
  WriteData& operator=(const WriteData&) = delete;
  ~WriteData() { std::free(bytes); }

  char* Release() { return std::exchange(bytes, nullptr); }
};

// Everything a request carries, copied out of the buffers libfuse lends to
// the op callback: built on a FUSE thread, read and freed on the JS thread.
// Only the fields of its op are meaningful.
struct Request {
  Op op;
  uint64_t id = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;

  uint64_t ino = 0;
  uint64_t parent = 0;
  uint64_t newParent = 0;
  std::string name;
  std::string newName;
  std::string target;

  bool hasFh = false;
  uint64_t fh = 0;
  uint32_t mode = 0;
  uint64_t rdev = 0;
  int flags = 0;
  int mask = 0;
  int toSet = 0;
  uint32_t attrUid = 0;
  uint32_t attrGid = 0;
  uint64_t size = 0;
  int64_t offset = 0;
  timespec atime{};
  timespec mtime{};
  bool datasync = false;
  bool plus = false;

  WriteData data;
  std::vector<std::pair<uint64_t, uint64_t>> forgets;

  explicit Request(Op o) : op(o) {}
};

}  // namespace tmount
