#include "request_js.h"

#include <cstdlib>

#include "convert.h"

namespace tmount {

const char* OpName(Op op) {
  switch (op) {
#define TMOUNT_OP_CASE(op, name) \
  case Op::op:                   \
    return name;
    TMOUNT_OPS(TMOUNT_OP_CASE)
#undef TMOUNT_OP_CASE
  }
  return "unknown";
}

Napi::Array RequestSlotNames(Napi::Env env) {
  Napi::Array names = Napi::Array::New(env, kSlotCount);
  uint32_t next = 0;
#define TMOUNT_SLOT_NAME(name) names.Set(next++, Napi::String::New(env, #name));
  TMOUNT_REQUEST_SLOTS(TMOUNT_SLOT_NAME)
#undef TMOUNT_SLOT_NAME
  return names;
}

Napi::Array OpNames(Napi::Env env) {
  Napi::Array names = Napi::Array::New(env, kOpCount);
  for (int op = 0; op < kOpCount; ++op) names.Set(op, Napi::String::New(env, OpName(static_cast<Op>(op))));
  return names;
}

namespace {

// Below this a copy is cheaper than an external buffer, whose finalizer needs
// a weak handle and a callback from the garbage collector.
constexpr size_t kCopyBelow = 64 * 1024;

Napi::Buffer<char> TakeData(Napi::Env env, WriteData& data) {
  size_t size = data.size;
  if (size < kCopyBelow) return Napi::Buffer<char>::Copy(env, data.bytes, size);
  return Napi::Buffer<char>::New(env, data.Release(), size, [](Napi::Env, char* bytes) { std::free(bytes); });
}

// forget_multi's (ino, nlookup) pairs, flat.
Napi::Float64Array ForgetPairs(Napi::Env env, const Request& r) {
  Napi::Float64Array pairs = Napi::Float64Array::New(env, r.forgets.size() * 2);
  for (size_t i = 0; i < r.forgets.size(); ++i) {
    pairs[2 * i] = static_cast<double>(r.forgets[i].first);
    pairs[2 * i + 1] = static_cast<double>(r.forgets[i].second);
  }
  return pairs;
}

}  // namespace

void CallHandler(Napi::Env env, const Napi::Function& handler, double* slots, Request& r) {
  auto set = [slots](Slot slot, double value) { slots[static_cast<uint32_t>(slot)] = value; };
  set(Slot::id, static_cast<double>(r.id));
  set(Slot::ino, static_cast<double>(r.ino));
  set(Slot::parent, static_cast<double>(r.parent));
  set(Slot::fh, static_cast<double>(r.fh));
  set(Slot::hasFh, r.hasFh ? 1 : 0);
  set(Slot::size, static_cast<double>(r.size));
  set(Slot::offset, static_cast<double>(r.offset));
  set(Slot::flags, r.flags);
  set(Slot::mode, r.mode);
  set(Slot::rdev, static_cast<double>(r.rdev));
  set(Slot::toSet, r.toSet);
  set(Slot::attrUid, r.attrUid);
  set(Slot::attrGid, r.attrGid);
  set(Slot::atimeMs, TimespecToMs(r.atime));
  set(Slot::mtimeMs, TimespecToMs(r.mtime));
  set(Slot::newParent, static_cast<double>(r.newParent));
  set(Slot::datasync, r.datasync ? 1 : 0);
  set(Slot::plus, r.plus ? 1 : 0);

  Napi::Number op = Napi::Number::New(env, static_cast<int>(r.op));
  switch (r.op) {
    case Op::kLookup:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kCreate:
      handler.Call({op, Napi::String::New(env, r.name)});
      return;
    case Op::kSymlink:
      handler.Call({op, Napi::String::New(env, r.name), Napi::String::New(env, r.target)});
      return;
    case Op::kRename:
      handler.Call({op, Napi::String::New(env, r.name), Napi::String::New(env, r.newName)});
      return;
    case Op::kLink:
      handler.Call({op, Napi::String::New(env, r.newName)});
      return;
    case Op::kWrite:
      handler.Call({op, TakeData(env, r.data)});
      return;
    case Op::kForget:
      handler.Call({op, ForgetPairs(env, r)});
      return;
    default:
      handler.Call({op});
      return;
  }
}

}  // namespace tmount
