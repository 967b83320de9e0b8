#include <fuse_lowlevel.h>
#include <napi.h>

#include "request_js.h"
#include "session.h"

static Napi::Value LibfuseVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), fuse_pkgversion());
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FuseSession", tmount::Session::Define(env));
  exports.Set("libfuseVersion", Napi::Function::New<LibfuseVersion>(env, "libfuseVersion"));
  exports.Set("requestSlots", tmount::RequestSlotNames(env));
  exports.Set("opNames", tmount::OpNames(env));
  exports.Set("readsOnEventLoop", Napi::Boolean::New(env, tmount::Session::CanReadOnEventLoop()));
  return exports;
}

NODE_API_MODULE(tmount_fuse, Init)
