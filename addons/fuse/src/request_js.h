#pragma once

#include <napi.h>

#include "request.h"

namespace tmount {

// JS thread. Builds the FuseRequest object of addon-types.ts; a write's data
// moves into the Buffer without a copy.
Napi::Object RequestToJs(Napi::Env env, Request& request);

}  // namespace tmount
