#include <napi.h>

#include "connection.h"
#include "placeholders.h"
#include "registration.h"

// The module surface is CloudFilesAddon in
// src/backends/cloud-files/addon-types.ts; keep the two in step.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SyncRootConnection", tmount::SyncRootConnection::Define(env));
  exports.Set("currentUserSid", Napi::Function::New(env, tmount::CurrentUserSid, "currentUserSid"));
  exports.Set("registerSyncRoot", Napi::Function::New(env, tmount::RegisterSyncRoot, "registerSyncRoot"));
  exports.Set("unregisterSyncRoot", Napi::Function::New(env, tmount::UnregisterSyncRoot, "unregisterSyncRoot"));
  exports.Set("createPlaceholders", Napi::Function::New(env, tmount::CreatePlaceholders, "createPlaceholders"));
  exports.Set("placeholderState", Napi::Function::New(env, tmount::PlaceholderState, "placeholderState"));
  exports.Set("updatePlaceholder", Napi::Function::New(env, tmount::UpdatePlaceholder, "updatePlaceholder"));
  exports.Set("setInSyncState", Napi::Function::New(env, tmount::SetInSyncState, "setInSyncState"));
  exports.Set("convertToPlaceholder", Napi::Function::New(env, tmount::ConvertToPlaceholder, "convertToPlaceholder"));
  exports.Set("hydrate", Napi::Function::New(env, tmount::Hydrate, "hydrate"));
  exports.Set("dehydrate", Napi::Function::New(env, tmount::Dehydrate, "dehydrate"));
  exports.Set("setPinState", Napi::Function::New(env, tmount::SetPinState, "setPinState"));
  return exports;
}

NODE_API_MODULE(tmount_cloud_files, Init)
