#pragma once

#include <napi.h>

#include <cstdint>

#include "request.h"

namespace tmount {

// The property names of request objects; one list makes the enum and the strings.
#define TMOUNT_REQUEST_KEYS(X) \
  X(atimeMs) \
  X(ctx) \
  X(data) \
  X(datasync) \
  X(fh) \
  X(flags) \
  X(gid) \
  X(id) \
  X(ino) \
  X(items) \
  X(mask) \
  X(mode) \
  X(mtimeMs) \
  X(name) \
  X(newName) \
  X(newParent) \
  X(nlookup) \
  X(offset) \
  X(op) \
  X(parent) \
  X(pid) \
  X(plus) \
  X(rdev) \
  X(size) \
  X(target) \
  X(toSet) \
  X(uid)

enum class Key {
#define TMOUNT_ENUMERATOR(name) name,
  TMOUNT_REQUEST_KEYS(TMOUNT_ENUMERATOR)
#undef TMOUNT_ENUMERATOR
};

#define TMOUNT_COUNT_KEY(name) +1
constexpr uint32_t kKeyCount = 0 TMOUNT_REQUEST_KEYS(TMOUNT_COUNT_KEY);
#undef TMOUNT_COUNT_KEY

// JS thread. Request property names and op names as JS strings, made once
// per session: a name passed as a C string is decoded and looked up in V8's
// string table on every Set, for every property of every request. They live
// in one array because Node-API (before version 10) cannot reference a string.
class RequestNames {
 public:
  explicit RequestNames(Napi::Env env);

  // The names for one request, read from the array.
  class View {
   public:
    explicit View(Napi::Array table) : table_(table) {}
    Napi::Value Of(Key key) const { return table_.Get(static_cast<uint32_t>(key)); }
    Napi::Value Of(Op op) const { return table_.Get(kKeyCount + static_cast<uint32_t>(op)); }

   private:
    Napi::Array table_;
  };
  View Get() const { return View(table_.Value().As<Napi::Array>()); }

 private:
  Napi::ObjectReference table_;
};

// JS thread. Builds the FuseRequest object of addon-types.ts; a write's data
// moves into the Buffer without a copy.
Napi::Object RequestToJs(Napi::Env env, const RequestNames& requestNames, Request& request);

}  // namespace tmount
