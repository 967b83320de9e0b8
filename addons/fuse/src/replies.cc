#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "convert.h"
#include "session.h"

// The reply* methods, all on the JS thread. Each validates every argument
// first: a call that throws has sent nothing and leaves the request pending,
// so the caller can still answer it (typically with replyErr). Only then is
// the request removed from the table and answered with the fuse_reply_* that
// fuse_lowlevel.h lists as valid for its op.
namespace tmount {
namespace {

constexpr uint32_t Bit(Op op) { return uint32_t{1} << static_cast<unsigned>(op); }

constexpr uint32_t kAnyOp = ~Bit(Op::kForget);
constexpr uint32_t kEntryOps = Bit(Op::kLookup) | Bit(Op::kMknod) | Bit(Op::kMkdir) | Bit(Op::kSymlink) | Bit(Op::kLink);
constexpr uint32_t kAttrOps = Bit(Op::kGetattr) | Bit(Op::kSetattr);
constexpr uint32_t kOpenOps = Bit(Op::kOpen) | Bit(Op::kOpendir);
constexpr uint32_t kBufOps = Bit(Op::kRead) | Bit(Op::kReaddir);
// Ops whose success carries no data, answered with replyErr(id, 0).
constexpr uint32_t kEmptySuccessOps = Bit(Op::kUnlink) | Bit(Op::kRmdir) | Bit(Op::kRename) | Bit(Op::kFlush) |
                                      Bit(Op::kRelease) | Bit(Op::kFsync) | Bit(Op::kReleasedir) |
                                      Bit(Op::kFsyncdir);
// Linux errnos stay far below this; the kernel rejects larger ones.
constexpr uint64_t kMaxErrno = 4095;

uint64_t Id(const Napi::CallbackInfo& info, const char* method) {
  return ToUnsigned(info[0], std::string(method) + ": id");
}

std::string Describe(uint64_t id, const Pending& pending) {
  return "request " + std::to_string(id) + " ('" + OpName(pending.op) + "')";
}

struct DirEntry {
  std::string name;
  off_t nextOffset;
  fuse_entry_param entry;
};

std::vector<DirEntry> ToDirEntries(const Napi::Value& value, bool plus) {
  const std::string what = "replyDirectory: entries";
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), what + " must be an array");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<DirEntry> entries;
  entries.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const std::string item = what + "[" + std::to_string(i) + "]";
    Napi::Object object = ToObject(array.Get(i), item);
    DirEntry entry;
    entry.name = ToName(object.Get("name"), item + ".name");
    entry.nextOffset = static_cast<off_t>(ToSigned(object.Get("nextOffset"), item + ".nextOffset"));
    Napi::Value full = object.Get("entry");
    if (plus && !full.IsUndefined()) {
      entry.entry = ToEntry(full, item + ".entry");
    } else {
      // Without `entry`, readdirplus sends node id 0: the kernel then only
      // lists the name and takes no lookup reference (fuse_direntplus_link).
      std::memset(&entry.entry, 0, sizeof entry.entry);
      entry.entry.attr.st_ino = ToUnsigned(object.Get("ino"), item + ".ino");
      entry.entry.attr.st_mode = static_cast<mode_t>(ToUnsigned(object.Get("mode"), item + ".mode", UINT32_MAX));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

Session::Taken Session::Take(Napi::Env env, const char* method, uint64_t id, uint32_t allowedOps,
                             const Check& check) {
  std::unique_lock<std::mutex> life(lifeMutex_);
  // Once the session has ended every pending request was answered with EIO;
  // JS finishing its work afterwards is normal, not an error.
  if (ended_) return Taken{std::move(life), Pending{}, false};
  std::lock_guard<std::mutex> table(tableMutex_);
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    throw Napi::Error::New(env, std::string(method) + ": no pending request " + std::to_string(id) +
                                    " (already answered, or never sent)");
  }
  if ((allowedOps & Bit(it->second.op)) == 0) {
    throw Napi::Error::New(env, std::string(method) + ": " + Describe(id, it->second) + " cannot be answered with " +
                                    method);
  }
  if (check) check(it->second);
  Pending pending = it->second;
  pending_.erase(it);
  return Taken{std::move(life), pending, true};
}

Napi::Value Session::ReplyErr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyErr");
  int err = static_cast<int>(ToUnsigned(info[1], "replyErr: errno", kMaxErrno));
  Taken taken = Take(env, "replyErr", id, kAnyOp, [&](const Pending& pending) {
    if (err == 0 && (kEmptySuccessOps & Bit(pending.op)) == 0) {
      throw Napi::Error::New(env, "replyErr: errno 0 means success, and " + Describe(id, pending) +
                                      " needs its data in a success reply");
    }
  });
  if (taken.live) fuse_reply_err(taken.pending.req, err);
  return env.Undefined();
}

Napi::Value Session::ReplyNone(const Napi::CallbackInfo& info) {
  // Only forget takes no reply, and the addon answers forgets itself; any
  // other request left without a reply would hang its caller forever.
  Napi::Env env = info.Env();
  Take(env, "replyNone", Id(info, "replyNone"), 0, nullptr);
  return env.Undefined();
}

Napi::Value Session::ReplyEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyEntry");
  fuse_entry_param entry = ToEntry(info[1], "replyEntry: entry");
  Taken taken = Take(env, "replyEntry", id, kEntryOps, nullptr);
  if (taken.live) fuse_reply_entry(taken.pending.req, &entry);
  return env.Undefined();
}

Napi::Value Session::ReplyCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyCreate");
  fuse_entry_param entry = ToEntry(info[1], "replyCreate: entry");
  fuse_file_info fi = ToOpenReply(info[2], "replyCreate: open");
  Taken taken = Take(env, "replyCreate", id, Bit(Op::kCreate), nullptr);
  if (taken.live) fuse_reply_create(taken.pending.req, &entry, &fi);
  return env.Undefined();
}

Napi::Value Session::ReplyAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyAttr");
  struct stat attr = ToStat(info[1], "replyAttr: attr");
  double timeout = ToFinite(info[2], "replyAttr: timeout");
  if (timeout < 0) throw Napi::TypeError::New(env, "replyAttr: timeout must be at least 0");
  Taken taken = Take(env, "replyAttr", id, kAttrOps, nullptr);
  if (taken.live) fuse_reply_attr(taken.pending.req, &attr, timeout);
  return env.Undefined();
}

Napi::Value Session::ReplyReadlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyReadlink");
  std::string target = ToString(info[1], "replyReadlink: target");
  Taken taken = Take(env, "replyReadlink", id, Bit(Op::kReadlink), nullptr);
  if (taken.live) fuse_reply_readlink(taken.pending.req, target.c_str());
  return env.Undefined();
}

Napi::Value Session::ReplyOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyOpen");
  fuse_file_info fi = ToOpenReply(info[1], "replyOpen: open");
  Taken taken = Take(env, "replyOpen", id, kOpenOps, nullptr);
  if (taken.live) fuse_reply_open(taken.pending.req, &fi);
  return env.Undefined();
}

Napi::Value Session::ReplyWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyWrite");
  uint64_t count = ToUnsigned(info[1], "replyWrite: count");
  Taken taken = Take(env, "replyWrite", id, Bit(Op::kWrite), [&](const Pending& pending) {
    if (count > pending.size) {
      throw Napi::Error::New(env, "replyWrite: count " + std::to_string(count) + " is more than the " +
                                      std::to_string(pending.size) + " bytes " + Describe(id, pending) + " carried");
    }
  });
  if (taken.live) fuse_reply_write(taken.pending.req, count);
  return env.Undefined();
}

Napi::Value Session::ReplyBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyBuf");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "replyBuf: data must be a Buffer");
  }
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  Taken taken = Take(env, "replyBuf", id, kBufOps, [&](const Pending& pending) {
    if (data.ByteLength() > pending.size) {
      throw Napi::Error::New(env, "replyBuf: " + std::to_string(data.ByteLength()) + " bytes is more than the " +
                                      std::to_string(pending.size) + " " + Describe(id, pending) + " asked for");
    }
  });
  if (taken.live) fuse_reply_buf(taken.pending.req, reinterpret_cast<const char*>(data.Data()), data.ByteLength());
  return env.Undefined();
}

Napi::Value Session::ReplyStatfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyStatfs");
  struct statvfs st = ToStatvfs(info[1], "replyStatfs: stat");
  Taken taken = Take(env, "replyStatfs", id, Bit(Op::kStatfs), nullptr);
  if (taken.live) fuse_reply_statfs(taken.pending.req, &st);
  return env.Undefined();
}

Napi::Value Session::ReplyDirectory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id = Id(info, "replyDirectory");
  if (!info[3].IsBoolean()) throw Napi::TypeError::New(env, "replyDirectory: plus must be a boolean");
  bool plus = info[3].As<Napi::Boolean>().Value();
  std::vector<DirEntry> entries = ToDirEntries(info[1], plus);
  uint64_t size = ToUnsigned(info[2], "replyDirectory: size");
  Taken taken = Take(env, "replyDirectory", id, Bit(Op::kReaddir), [&](const Pending& pending) {
    if (pending.plus != plus) {
      throw Napi::Error::New(env, "replyDirectory: " + Describe(id, pending) + " is a " +
                                      (pending.plus ? "readdirplus" : "plain readdir") + ", but plus is " +
                                      (plus ? "true" : "false"));
    }
  });
  if (!taken.live) return Napi::Number::New(env, 0);

  size_t limit = static_cast<size_t>(std::min(size, taken.pending.size));
  std::vector<char> buf(limit);
  size_t used = 0;
  uint32_t packed = 0;
  for (const DirEntry& entry : entries) {
    size_t room = limit - used;
    size_t need = plus ? fuse_add_direntry_plus(taken.pending.req, buf.data() + used, room, entry.name.c_str(),
                                                &entry.entry, entry.nextOffset)
                       : fuse_add_direntry(taken.pending.req, buf.data() + used, room, entry.name.c_str(),
                                           &entry.entry.attr, entry.nextOffset);
    if (need > room) break;
    used += need;
    ++packed;
  }
  fuse_reply_buf(taken.pending.req, buf.data(), used);
  return Napi::Number::New(env, packed);
}

}  // namespace tmount
