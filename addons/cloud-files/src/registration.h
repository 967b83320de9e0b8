#pragma once

#include <napi.h>

namespace tmount {

// JS thread. currentUserSid() answers at once; the others return promises
// and do their work on a pool thread.
Napi::Value CurrentUserSid(const Napi::CallbackInfo& info);
Napi::Value RegisterSyncRoot(const Napi::CallbackInfo& info);
Napi::Value UnregisterSyncRoot(const Napi::CallbackInfo& info);

}  // namespace tmount
