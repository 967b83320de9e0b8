#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace tmount {

// The CF_PLACEHOLDER_CREATE_INFO entries of one CfCreatePlaceholders or
// TRANSFER_PLACEHOLDERS call, copied out of the JS array on the JS thread.
// The entries point into the names and identities held here, which are
// never resized after FromJs: keep the batch alive (and in place) until the
// call has returned. After the call, each entry's Result says what happened
// to it (E_PENDING: not processed).
class PlaceholderBatch {
 public:
  static std::shared_ptr<PlaceholderBatch> FromJs(Napi::Env env, const Napi::Value& value);

  CF_PLACEHOLDER_CREATE_INFO* Infos() { return infos_.empty() ? nullptr : infos_.data(); }
  DWORD Count() const { return static_cast<DWORD>(infos_.size()); }
  // True when every entry was created or was there already.
  bool AllPresent() const;
  // [{ name, hresult }], for the JS thread.
  Napi::Array Results(Napi::Env env) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::wstring> wideNames_;
  std::vector<std::vector<uint8_t>> identities_;
  std::vector<CF_PLACEHOLDER_CREATE_INFO> infos_;
};

// CfFsMetadata (addon-types.ts) to CF_FS_METADATA.
CF_FS_METADATA MetadataFromJs(Napi::Env env, const Napi::Object& metadata);

Napi::Value CreatePlaceholders(const Napi::CallbackInfo& info);
Napi::Value PlaceholderState(const Napi::CallbackInfo& info);
Napi::Value UpdatePlaceholder(const Napi::CallbackInfo& info);
Napi::Value SetInSyncState(const Napi::CallbackInfo& info);
Napi::Value ConvertToPlaceholder(const Napi::CallbackInfo& info);
Napi::Value Hydrate(const Napi::CallbackInfo& info);
Napi::Value Dehydrate(const Napi::CallbackInfo& info);
Napi::Value SetPinState(const Napi::CallbackInfo& info);

}  // namespace tmount
