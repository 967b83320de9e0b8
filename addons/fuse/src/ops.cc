#include "ops.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "session.h"

// The low-level op callbacks. Each runs on a loop thread, copies what it
// needs out of the buffers libfuse only lends for the duration of the call,
// hands the copy to Session::Submit and returns without waiting: the reply
// comes later from the JS thread.
namespace tmount {
namespace {

Session* SessionOf(fuse_req_t req) { return static_cast<Session*>(fuse_req_userdata(req)); }

// Builds and submits a request; an allocation failure while copying becomes
// ENOMEM instead of unwinding into libfuse's C frames.
template <typename Fill>
void Dispatch(fuse_req_t req, Op op, Fill fill) {
  try {
    auto request = std::make_unique<Request>(op);
    fill(*request);
    SessionOf(req)->Submit(req, std::move(request));
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  }
}

void SetFh(Request& r, const fuse_file_info* fi) {
  if (fi == nullptr) return;
  r.hasFh = true;
  r.fh = fi->fh;
}

void Init(void* userdata, fuse_conn_info* conn) { static_cast<Session*>(userdata)->Negotiate(conn); }

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Op::kLookup, [&](Request& r) {
    r.parent = parent;
    r.name = name;
  });
}

// Forgets need no reply, so they are answered here at once and only then
// reported: the kernel never waits for JS, and JS cannot answer them wrongly.
// If the copy cannot be allocated the JS inode table keeps a count too high:
// a leak, never a wrong answer.
void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Session* session = SessionOf(req);
  fuse_reply_none(req);
  try {
    auto request = std::make_unique<Request>(Op::kForget);
    request->forgets.reserve(count);
    for (size_t i = 0; i < count; ++i) request->forgets.emplace_back(forgets[i].ino, forgets[i].nlookup);
    session->SubmitForget(std::move(request));
  } catch (const std::bad_alloc&) {
  }
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fuse_forget_data one;
  one.ino = ino;
  one.nlookup = nlookup;
  ForgetMulti(req, 1, &one);
}

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Op::kGetattr, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
  });
}

void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int toSet, fuse_file_info* fi) {
  Dispatch(req, Op::kSetattr, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.toSet = toSet;
    r.mode = attr->st_mode;
    r.attrUid = attr->st_uid;
    r.attrGid = attr->st_gid;
    r.size = static_cast<uint64_t>(attr->st_size);
    r.atime = attr->st_atim;
    r.mtime = attr->st_mtim;
  });
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  Dispatch(req, Op::kReadlink, [&](Request& r) { r.ino = ino; });
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Dispatch(req, Op::kMknod, [&](Request& r) {
    r.parent = parent;
    r.name = name;
    r.mode = mode;
    r.rdev = rdev;
  });
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Dispatch(req, Op::kMkdir, [&](Request& r) {
    r.parent = parent;
    r.name = name;
    r.mode = mode;
  });
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Op::kUnlink, [&](Request& r) {
    r.parent = parent;
    r.name = name;
  });
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Dispatch(req, Op::kRmdir, [&](Request& r) {
    r.parent = parent;
    r.name = name;
  });
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Dispatch(req, Op::kSymlink, [&](Request& r) {
    r.target = link;
    r.parent = parent;
    r.name = name;
  });
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newParent, const char* newName,
            unsigned int flags) {
  Dispatch(req, Op::kRename, [&](Request& r) {
    r.parent = parent;
    r.name = name;
    r.newParent = newParent;
    r.newName = newName;
    r.flags = static_cast<int>(flags);
  });
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newParent, const char* newName) {
  Dispatch(req, Op::kLink, [&](Request& r) {
    r.ino = ino;
    r.newParent = newParent;
    r.newName = newName;
  });
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Op::kOpen, [&](Request& r) {
    r.ino = ino;
    r.flags = fi->flags;
  });
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Dispatch(req, Op::kRead, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.size = size;
    r.offset = off;
  });
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  Dispatch(req, Op::kWrite, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.offset = off;
    r.flags = fi->flags;
    r.size = size;
    // The kernel's buffer is reused for the next request as soon as we return.
    r.data.bytes = static_cast<char*>(std::malloc(size > 0 ? size : 1));
    if (r.data.bytes == nullptr) throw std::bad_alloc();
    std::memcpy(r.data.bytes, buf, size);
    r.data.size = size;
  });
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Op::kFlush, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
  });
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Op::kRelease, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.flags = fi->flags;
  });
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Dispatch(req, Op::kFsync, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.datasync = datasync != 0;
  });
}

// Answered here where the kernel allows: ENOSYS makes it open directories
// by itself from then on (with keep-cache and cache-dir, what JS would
// answer), which saves two requests per directory a `find` or `git status`
// walks. Readdir needs no handle (driver.ts).
void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (SessionOf(req)->KernelOpensDirs()) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  Dispatch(req, Op::kOpendir, [&](Request& r) {
    r.ino = ino;
    r.flags = fi->flags;
  });
}

void ReaddirAny(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  Dispatch(req, Op::kReaddir, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.size = size;
    r.offset = off;
    r.plus = plus;
  });
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReaddirAny(req, ino, size, off, fi, false);
}

void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReaddirAny(req, ino, size, off, fi, true);
}

void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Dispatch(req, Op::kReleasedir, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
  });
}

void Fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Dispatch(req, Op::kFsyncdir, [&](Request& r) {
    r.ino = ino;
    SetFh(r, fi);
    r.datasync = datasync != 0;
  });
}

void Statfs(fuse_req_t req, fuse_ino_t ino) {
  Dispatch(req, Op::kStatfs, [&](Request& r) { r.ino = ino; });
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Dispatch(req, Op::kCreate, [&](Request& r) {
    r.parent = parent;
    r.name = name;
    r.mode = mode;
    r.flags = fi->flags;
  });
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = Getattr;
  ops.setattr = Setattr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = Opendir;
  ops.readdir = Readdir;
  ops.readdirplus = Readdirplus;
  ops.releasedir = Releasedir;
  ops.fsyncdir = Fsyncdir;
  ops.statfs = Statfs;
  // No access: libfuse answers ENOSYS, which the kernel takes as "allowed"
  // and stops asking; the server checks permissions on every operation.
  ops.create = Create;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops* LowlevelOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return &ops;
}

}  // namespace tmount
