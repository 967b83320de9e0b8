#pragma once

#include <napi.h>

#include <cstdint>

#include "request.h"

namespace tmount {

// The numbers of a request, in the order of the Float64Array they are written
// to for JS (src/backends/fuse/request-decoder.ts reads them by the same
// order and checks it against `requestSlots` when the addon loads).
#define TMOUNT_REQUEST_SLOTS(X) \
  X(id) \
  X(ino) \
  X(parent) \
  X(fh) \
  X(hasFh) \
  X(size) \
  X(offset) \
  X(flags) \
  X(mode) \
  X(rdev) \
  X(toSet) \
  X(attrUid) \
  X(attrGid) \
  X(atimeMs) \
  X(mtimeMs) \
  X(newParent) \
  X(datasync) \
  X(plus)

enum class Slot {
#define TMOUNT_SLOT_ENUMERATOR(name) name,
  TMOUNT_REQUEST_SLOTS(TMOUNT_SLOT_ENUMERATOR)
#undef TMOUNT_SLOT_ENUMERATOR
};

#define TMOUNT_COUNT_SLOT(name) +1
constexpr uint32_t kSlotCount = 0 TMOUNT_REQUEST_SLOTS(TMOUNT_COUNT_SLOT);
#undef TMOUNT_COUNT_SLOT

// The names of the slots and of the ops, in order, for the addon's exports.
Napi::Array RequestSlotNames(Napi::Env env);
Napi::Array OpNames(Napi::Env env);

// JS thread. Hands a request to JS: its numbers go into `slots` (kSlotCount
// doubles), and `handler` is called with the op's index and what is not a
// number (names, link targets, a write's data, forget's pairs). Setting
// properties on an object from C++ goes through V8's runtime once per
// property; JS builds the request object itself in a fraction of that.
// A write's data moves into the Buffer without a copy.
void CallHandler(Napi::Env env, const Napi::Function& handler, double* slots, Request& request);

}  // namespace tmount
