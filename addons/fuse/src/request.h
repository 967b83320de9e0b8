#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

namespace tmount {

// Every op JS hears about, with the name it sees in `request.op`. One list
// makes the enum, the names and the count, so JS can check it has the same.
#define TMOUNT_OPS(X) \
  X(kLookup, "lookup") \
  X(kGetattr, "getattr") \
  X(kSetattr, "setattr") \
  X(kReadlink, "readlink") \
  X(kMknod, "mknod") \
  X(kMkdir, "mkdir") \
  X(kUnlink, "unlink") \
  X(kRmdir, "rmdir") \
  X(kSymlink, "symlink") \
  X(kRename, "rename") \
  X(kLink, "link") \
  X(kOpen, "open") \
  X(kRead, "read") \
  X(kWrite, "write") \
  X(kFlush, "flush") \
  X(kRelease, "release") \
  X(kFsync, "fsync") \
  X(kOpendir, "opendir") \
  X(kReaddir, "readdir") \
  X(kReleasedir, "releasedir") \
  X(kFsyncdir, "fsyncdir") \
  X(kStatfs, "statfs") \
  X(kCreate, "create") \
  X(kForget, "forget")

enum class Op {
#define TMOUNT_OP_ENUMERATOR(op, name) op,
  TMOUNT_OPS(TMOUNT_OP_ENUMERATOR)
#undef TMOUNT_OP_ENUMERATOR
};

#define TMOUNT_COUNT_OP(op, name) +1
constexpr int kOpCount = 0 TMOUNT_OPS(TMOUNT_COUNT_OP);
#undef TMOUNT_COUNT_OP

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
