#include "request_js.h"

#include <cstdlib>

#include "convert.h"

namespace tmount {

const char* OpName(Op op) {
  switch (op) {
    case Op::kLookup: return "lookup";
    case Op::kGetattr: return "getattr";
    case Op::kSetattr: return "setattr";
    case Op::kReadlink: return "readlink";
    case Op::kMknod: return "mknod";
    case Op::kMkdir: return "mkdir";
    case Op::kUnlink: return "unlink";
    case Op::kRmdir: return "rmdir";
    case Op::kSymlink: return "symlink";
    case Op::kRename: return "rename";
    case Op::kLink: return "link";
    case Op::kOpen: return "open";
    case Op::kRead: return "read";
    case Op::kWrite: return "write";
    case Op::kFlush: return "flush";
    case Op::kRelease: return "release";
    case Op::kFsync: return "fsync";
    case Op::kOpendir: return "opendir";
    case Op::kReaddir: return "readdir";
    case Op::kReleasedir: return "releasedir";
    case Op::kFsyncdir: return "fsyncdir";
    case Op::kStatfs: return "statfs";
    case Op::kCreate: return "create";
    case Op::kAccess: return "access";
    case Op::kForget: return "forget";
  }
  return "unknown";
}

namespace {

Napi::Number Num(Napi::Env env, double value) { return Napi::Number::New(env, value); }

// Below this a copy is cheaper than an external buffer, whose finalizer needs
// a weak handle and a callback from the garbage collector.
constexpr size_t kCopyBelow = 64 * 1024;

Napi::Buffer<char> TakeData(Napi::Env env, WriteData& data) {
  size_t size = data.size;
  if (size < kCopyBelow) return Napi::Buffer<char>::Copy(env, data.bytes, size);
  return Napi::Buffer<char>::New(env, data.Release(), size, [](Napi::Env, char* bytes) { std::free(bytes); });
}

}  // namespace

RequestNames::RequestNames(Napi::Env env) {
  Napi::Array table = Napi::Array::New(env);
  uint32_t next = 0;
#define TMOUNT_KEY_STRING(name) table.Set(next++, Napi::String::New(env, #name));
  TMOUNT_REQUEST_KEYS(TMOUNT_KEY_STRING)
#undef TMOUNT_KEY_STRING
  for (int op = 0; op <= static_cast<int>(Op::kForget); ++op) {  // kForget is the last Op.
    table.Set(next++, Napi::String::New(env, tmount::OpName(static_cast<Op>(op))));
  }
  table_ = Napi::Persistent(table.As<Napi::Object>());
}

Napi::Object RequestToJs(Napi::Env env, const RequestNames& requestNames, Request& r) {
  const RequestNames::View names = requestNames.Get();
  Napi::Object o = Napi::Object::New(env);
  o.Set(names.Of(Key::op), names.Of(r.op));
  o.Set(names.Of(Key::id), Num(env, static_cast<double>(r.id)));
  Napi::Object ctx = Napi::Object::New(env);
  ctx.Set(names.Of(Key::uid), Num(env, r.uid));
  ctx.Set(names.Of(Key::gid), Num(env, r.gid));
  ctx.Set(names.Of(Key::pid), Num(env, r.pid));
  o.Set(names.Of(Key::ctx), ctx);

  auto ino = [&] { o.Set(names.Of(Key::ino), Num(env, static_cast<double>(r.ino))); };
  auto fh = [&] {
    if (r.hasFh) o.Set(names.Of(Key::fh), Num(env, static_cast<double>(r.fh)));
  };
  auto parentName = [&] {
    o.Set(names.Of(Key::parent), Num(env, static_cast<double>(r.parent)));
    o.Set(names.Of(Key::name), r.name);
  };

  switch (r.op) {
    case Op::kLookup:
    case Op::kUnlink:
    case Op::kRmdir:
      parentName();
      break;
    case Op::kGetattr:
    case Op::kFlush:
    case Op::kReleasedir:
      ino();
      fh();
      break;
    case Op::kSetattr:
      ino();
      fh();
      o.Set(names.Of(Key::toSet), Num(env, r.toSet));
      o.Set(names.Of(Key::mode), Num(env, r.mode));
      o.Set(names.Of(Key::uid), Num(env, r.attrUid));
      o.Set(names.Of(Key::gid), Num(env, r.attrGid));
      o.Set(names.Of(Key::size), Num(env, static_cast<double>(r.size)));
      o.Set(names.Of(Key::atimeMs), Num(env, TimespecToMs(r.atime)));
      o.Set(names.Of(Key::mtimeMs), Num(env, TimespecToMs(r.mtime)));
      break;
    case Op::kReadlink:
    case Op::kStatfs:
      ino();
      break;
    case Op::kMknod:
      parentName();
      o.Set(names.Of(Key::mode), Num(env, r.mode));
      o.Set(names.Of(Key::rdev), Num(env, static_cast<double>(r.rdev)));
      break;
    case Op::kMkdir:
      parentName();
      o.Set(names.Of(Key::mode), Num(env, r.mode));
      break;
    case Op::kSymlink:
      o.Set(names.Of(Key::target), r.target);
      parentName();
      break;
    case Op::kRename:
      parentName();
      o.Set(names.Of(Key::newParent), Num(env, static_cast<double>(r.newParent)));
      o.Set(names.Of(Key::newName), r.newName);
      o.Set(names.Of(Key::flags), Num(env, r.flags));
      break;
    case Op::kLink:
      ino();
      o.Set(names.Of(Key::newParent), Num(env, static_cast<double>(r.newParent)));
      o.Set(names.Of(Key::newName), r.newName);
      break;
    case Op::kOpen:
    case Op::kOpendir:
      ino();
      o.Set(names.Of(Key::flags), Num(env, r.flags));
      break;
    case Op::kRead:
      ino();
      fh();
      o.Set(names.Of(Key::size), Num(env, static_cast<double>(r.size)));
      o.Set(names.Of(Key::offset), Num(env, static_cast<double>(r.offset)));
      break;
    case Op::kWrite:
      ino();
      fh();
      o.Set(names.Of(Key::data), TakeData(env, r.data));
      o.Set(names.Of(Key::offset), Num(env, static_cast<double>(r.offset)));
      o.Set(names.Of(Key::flags), Num(env, r.flags));
      break;
    case Op::kRelease:
      ino();
      fh();
      o.Set(names.Of(Key::flags), Num(env, r.flags));
      break;
    case Op::kFsync:
    case Op::kFsyncdir:
      ino();
      fh();
      o.Set(names.Of(Key::datasync), Napi::Boolean::New(env, r.datasync));
      break;
    case Op::kReaddir:
      ino();
      fh();
      o.Set(names.Of(Key::size), Num(env, static_cast<double>(r.size)));
      o.Set(names.Of(Key::offset), Num(env, static_cast<double>(r.offset)));
      o.Set(names.Of(Key::plus), Napi::Boolean::New(env, r.plus));
      break;
    case Op::kCreate:
      parentName();
      o.Set(names.Of(Key::mode), Num(env, r.mode));
      o.Set(names.Of(Key::flags), Num(env, r.flags));
      break;
    case Op::kAccess:
      ino();
      o.Set(names.Of(Key::mask), Num(env, r.mask));
      break;
    case Op::kForget: {
      Napi::Array items = Napi::Array::New(env, r.forgets.size());
      for (size_t i = 0; i < r.forgets.size(); ++i) {
        Napi::Object item = Napi::Object::New(env);
        item.Set(names.Of(Key::ino), Num(env, static_cast<double>(r.forgets[i].first)));
        item.Set(names.Of(Key::nlookup), Num(env, static_cast<double>(r.forgets[i].second)));
        items.Set(static_cast<uint32_t>(i), item);
      }
      o.Set(names.Of(Key::items), items);
      break;
    }
  }
  return o;
}

}  // namespace tmount
