#include "placeholders.h"

#include <map>
#include <memory>
#include <utility>

// Every function here is called on the JS thread, copies its arguments,
// and does the Windows calls in a RunTask on a pool thread: cfapi may wait
// for this very process's provider, which answers on the JS thread.

namespace tmount {

namespace {

bool IsExists(HRESULT hr) {
  return hr == HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS) || hr == HRESULT_FROM_WIN32(ERROR_FILE_EXISTS);
}

double MsOf(Napi::Env env, const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsNumber()) throw Napi::TypeError::New(env, std::string("metadata.") + name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

std::vector<uint8_t> BytesOf(Napi::Env env, const Napi::Value& value, const char* name) {
  if (value.IsUndefined()) return {};
  if (!value.IsBuffer()) throw Napi::TypeError::New(env, std::string(name) + " must be a Buffer");
  Napi::Buffer<uint8_t> buffer = value.As<Napi::Buffer<uint8_t>>();
  if (buffer.Length() > CF_PLACEHOLDER_MAX_FILE_IDENTITY_LENGTH) throw Napi::RangeError::New(env, std::string(name) + " is longer than 4 KiB");
  return std::vector<uint8_t>(buffer.Data(), buffer.Data() + buffer.Length());
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsObject()) throw Napi::TypeError::New(info.Env(), "options must be an object");
  return info[index].As<Napi::Object>();
}

}  // namespace

CF_FS_METADATA MetadataFromJs(Napi::Env env, const Napi::Object& metadata) {
  CF_FS_METADATA fs = {};
  fs.FileSize.QuadPart = IntegerOf(env, metadata.Get("size"), "metadata.size");
  fs.BasicInfo.FileAttributes = static_cast<DWORD>(IntegerOf(env, metadata.Get("attributes"), "metadata.attributes"));
  fs.BasicInfo.CreationTime = FileTimeFromMs(MsOf(env, metadata, "createdMs"));
  fs.BasicInfo.LastWriteTime = FileTimeFromMs(MsOf(env, metadata, "modifiedMs"));
  fs.BasicInfo.LastAccessTime = FileTimeFromMs(MsOf(env, metadata, "accessedMs"));
  fs.BasicInfo.ChangeTime = FileTimeFromMs(MsOf(env, metadata, "changedMs"));
  return fs;
}

std::shared_ptr<PlaceholderBatch> PlaceholderBatch::FromJs(Napi::Env env, const Napi::Value& value) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "placeholders must be an array");
  Napi::Array array = value.As<Napi::Array>();
  const uint32_t count = array.Length();
  auto batch = std::make_shared<PlaceholderBatch>();
  std::vector<CF_FS_METADATA> metadata;
  std::vector<CF_PLACEHOLDER_CREATE_FLAGS> flags;
  batch->names_.reserve(count);
  batch->wideNames_.reserve(count);
  batch->identities_.reserve(count);
  for (uint32_t index = 0; index < count; index++) {
    Napi::Value item = array.Get(index);
    if (!item.IsObject()) throw Napi::TypeError::New(env, "each placeholder must be an object");
    Napi::Object placeholder = item.As<Napi::Object>();
    Napi::Value name = placeholder.Get("name");
    if (!name.IsString()) throw Napi::TypeError::New(env, "placeholder.name must be a string");
    Napi::Value meta = placeholder.Get("metadata");
    if (!meta.IsObject()) throw Napi::TypeError::New(env, "placeholder.metadata must be an object");
    batch->names_.push_back(name.As<Napi::String>().Utf8Value());
    batch->wideNames_.push_back(Wide(batch->names_.back()));
    batch->identities_.push_back(BytesOf(env, placeholder.Get("identity"), "placeholder.identity"));
    metadata.push_back(MetadataFromJs(env, meta.As<Napi::Object>()));
    CF_PLACEHOLDER_CREATE_FLAGS entryFlags = CF_PLACEHOLDER_CREATE_FLAG_NONE;
    if (BoolProperty(placeholder, "markInSync", false)) entryFlags |= CF_PLACEHOLDER_CREATE_FLAG_MARK_IN_SYNC;
    if (BoolProperty(placeholder, "populated", false)) entryFlags |= CF_PLACEHOLDER_CREATE_FLAG_DISABLE_ON_DEMAND_POPULATION;
    flags.push_back(entryFlags);
  }
  // Only now, with every vector at its final size, take pointers into them.
  batch->infos_.resize(count);
  for (uint32_t index = 0; index < count; index++) {
    CF_PLACEHOLDER_CREATE_INFO& entry = batch->infos_[index];
    entry = {};
    entry.RelativeFileName = batch->wideNames_[index].c_str();
    entry.FsMetadata = metadata[index];
    const std::vector<uint8_t>& identity = batch->identities_[index];
    entry.FileIdentity = identity.empty() ? nullptr : identity.data();
    entry.FileIdentityLength = static_cast<DWORD>(identity.size());
    entry.Flags = flags[index];
    entry.Result = E_PENDING;
  }
  return batch;
}

bool PlaceholderBatch::AllPresent() const {
  for (const CF_PLACEHOLDER_CREATE_INFO& entry : infos_) {
    if (FAILED(entry.Result) && !IsExists(entry.Result)) return false;
  }
  return true;
}

Napi::Array PlaceholderBatch::Results(Napi::Env env) const {
  Napi::Array results = Napi::Array::New(env, infos_.size());
  for (size_t index = 0; index < infos_.size(); index++) {
    Napi::Object result = Napi::Object::New(env);
    result.Set("name", Napi::String::New(env, names_[index]));
    result.Set("hresult", Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(infos_[index].Result))));
    results.Set(static_cast<uint32_t>(index), result);
  }
  return results;
}

Napi::Value CreatePlaceholders(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring directory = PathArg(info, 0, "directory");
  std::shared_ptr<PlaceholderBatch> batch = PlaceholderBatch::FromJs(env, info.Length() > 1 ? info[1] : env.Undefined());
  return RunTask(
      env, "tmount:createPlaceholders",
      [directory, batch] {
        if (batch->Count() == 0) return;
        DWORD processed = 0;
        HRESULT hr = CfCreatePlaceholders(directory.c_str(), batch->Infos(), batch->Count(), CF_CREATE_FLAG_NONE, &processed);
        // A call that fails for some entries reports them one by one; only
        // a call that got nowhere is an error of its own.
        if (FAILED(hr) && processed == 0 && !batch->AllPresent()) {
          bool untouched = true;
          for (DWORD index = 0; index < batch->Count(); index++) untouched = untouched && batch->Infos()[index].Result == E_PENDING;
          if (untouched) ThrowCall("CfCreatePlaceholders(" + Utf8(directory) + ")", hr);
        }
      },
      [batch](Napi::Env env) -> Napi::Value { return batch->Results(env); });
}

namespace {

struct LocalState {
  bool exists = false;
  bool isDirectory = false;
  DWORD attributes = 0;
  int64_t size = 0;
  double modifiedMs = 0;
  bool placeholder = false;
  int inSyncState = -1;
  int pinState = -1;
  int64_t onDiskDataSize = -1;
  USN usn = 0;
};

void ReadState(const std::wstring& path, LocalState& state) {
  HANDLE raw = CreateFileW(path.c_str(), FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (raw == INVALID_HANDLE_VALUE) {
    DWORD error = GetLastError();
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) return;
    ThrowCall("CreateFileW(" + Utf8(path) + ")", HRESULT_FROM_WIN32(error));
  }
  UniqueHandle handle(raw);
  FILE_BASIC_INFO basic = {};
  CheckWin32("GetFileInformationByHandleEx(FileBasicInfo)", GetFileInformationByHandleEx(handle.get(), FileBasicInfo, &basic, sizeof basic));
  FILE_STANDARD_INFO standard = {};
  CheckWin32("GetFileInformationByHandleEx(FileStandardInfo)",
             GetFileInformationByHandleEx(handle.get(), FileStandardInfo, &standard, sizeof standard));
  state.exists = true;
  state.isDirectory = standard.Directory != FALSE;
  state.attributes = basic.FileAttributes;
  state.size = state.isDirectory ? 0 : standard.EndOfFile.QuadPart;
  state.modifiedMs = MsFromFileTime(basic.LastWriteTime);

  // The file identity can be up to 4 KiB; room for it avoids ERROR_MORE_DATA.
  std::vector<uint8_t> buffer(sizeof(CF_PLACEHOLDER_STANDARD_INFO) + CF_PLACEHOLDER_MAX_FILE_IDENTITY_LENGTH);
  DWORD returned = 0;
  HRESULT hr = CfGetPlaceholderInfo(handle.get(), CF_PLACEHOLDER_INFO_STANDARD, buffer.data(), static_cast<DWORD>(buffer.size()), &returned);
  if (SUCCEEDED(hr)) {
    const auto* standardInfo = reinterpret_cast<const CF_PLACEHOLDER_STANDARD_INFO*>(buffer.data());
    state.placeholder = true;
    state.inSyncState = static_cast<int>(standardInfo->InSyncState);
    state.pinState = static_cast<int>(standardInfo->PinState);
    state.onDiskDataSize = standardInfo->OnDiskDataSize.QuadPart;
  } else if (hr != HRESULT_FROM_WIN32(ERROR_NOT_A_CLOUD_FILE)
#ifdef ERROR_CLOUD_FILE_NOT_UNDER_SYNC_ROOT
             && hr != HRESULT_FROM_WIN32(ERROR_CLOUD_FILE_NOT_UNDER_SYNC_ROOT)
#endif
  ) {
    ThrowCall("CfGetPlaceholderInfo(" + Utf8(path) + ")", hr);
  }

  // Without a USN journal on the volume there is no USN; callers then skip the check.
  READ_FILE_USN_DATA want = {};
  want.MinMajorVersion = 2;
  want.MaxMajorVersion = 2;
  std::vector<uint8_t> record(sizeof(USN_RECORD_V2) + 1024);
  DWORD bytes = 0;
  if (DeviceIoControl(handle.get(), FSCTL_READ_FILE_USN_DATA, &want, sizeof want, record.data(), static_cast<DWORD>(record.size()), &bytes, nullptr) &&
      bytes >= sizeof(USN_RECORD_V2)) {
    const auto* usn = reinterpret_cast<const USN_RECORD_V2*>(record.data());
    if (usn->MajorVersion == 2) state.usn = usn->Usn;
  }
}

}  // namespace

Napi::Value PlaceholderState(const Napi::CallbackInfo& info) {
  std::wstring path = PathArg(info, 0, "path");
  auto state = std::make_shared<LocalState>();
  return RunTask(
      info.Env(), "tmount:placeholderState", [path, state] { ReadState(path, *state); },
      [state](Napi::Env env) -> Napi::Value {
        if (!state->exists) return env.Null();
        Napi::Object result = Napi::Object::New(env);
        result.Set("isDirectory", Napi::Boolean::New(env, state->isDirectory));
        result.Set("attributes", Napi::Number::New(env, static_cast<double>(state->attributes)));
        result.Set("size", Napi::Number::New(env, static_cast<double>(state->size)));
        result.Set("modifiedMs", Napi::Number::New(env, state->modifiedMs));
        result.Set("placeholder", Napi::Boolean::New(env, state->placeholder));
        result.Set("inSyncState", Napi::Number::New(env, state->inSyncState));
        result.Set("pinState", Napi::Number::New(env, state->pinState));
        result.Set("onDiskDataSize", Napi::Number::New(env, static_cast<double>(state->onDiskDataSize)));
        if (state->usn != 0) result.Set("usn", Napi::BigInt::New(env, static_cast<int64_t>(state->usn)));
        return result;
      });
}

Napi::Value UpdatePlaceholder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring path = PathArg(info, 0, "path");
  Napi::Object update = OptionsArg(info, 1);
  bool hasMetadata = update.Get("metadata").IsObject();
  CF_FS_METADATA metadata = hasMetadata ? MetadataFromJs(env, update.Get("metadata").As<Napi::Object>()) : CF_FS_METADATA{};
  CF_UPDATE_FLAGS flags = CF_UPDATE_FLAG_NONE;
  if (BoolProperty(update, "verifyInSync", false)) flags |= CF_UPDATE_FLAG_VERIFY_IN_SYNC;
  if (BoolProperty(update, "markInSync", false)) flags |= CF_UPDATE_FLAG_MARK_IN_SYNC;
  bool dehydrate = BoolProperty(update, "dehydrate", false);
  if (dehydrate) flags |= CF_UPDATE_FLAG_DEHYDRATE;
  Napi::Value onDemand = update.Get("onDemandPopulation");
  if (onDemand.IsBoolean()) {
    flags |= onDemand.As<Napi::Boolean>().Value() ? CF_UPDATE_FLAG_ENABLE_ON_DEMAND_POPULATION : CF_UPDATE_FLAG_DISABLE_ON_DEMAND_POPULATION;
  }
  USN expected = UsnOf(env, update.Get("usn"));
  auto usn = std::make_shared<USN>(expected);
  return RunTask(
      env, "tmount:updatePlaceholder",
      [path, hasMetadata, metadata, flags, dehydrate, usn] {
        auto apply = [&](HANDLE win32) {
          Check("CfUpdatePlaceholder", CfUpdatePlaceholder(win32, hasMetadata ? &metadata : nullptr, nullptr, 0, nullptr, 0, flags, usn.get(), nullptr));
        };
        if (dehydrate) {
          // Dropping data needs the file to ourselves; the oplock lets others in again as soon as we are done.
          ProtectedHandle handle(path, CF_OPEN_FILE_FLAG_EXCLUSIVE | CF_OPEN_FILE_FLAG_WRITE_ACCESS);
          handle.Use(apply);
        } else {
          UniqueHandle handle = OpenForMetadata(path);
          apply(handle.get());
        }
      },
      [usn](Napi::Env env) -> Napi::Value { return Napi::BigInt::New(env, static_cast<int64_t>(*usn)); });
}

Napi::Value SetInSyncState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring path = PathArg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "inSync must be a boolean");
  bool inSync = info[1].As<Napi::Boolean>().Value();
  auto usn = std::make_shared<USN>(UsnOf(env, info.Length() > 2 ? info[2] : env.Undefined()));
  return RunTask(
      env, "tmount:setInSyncState",
      [path, inSync, usn] {
        UniqueHandle handle = OpenForMetadata(path);
        // With a USN, the platform refuses when the file changed since that USN was read.
        Check("CfSetInSyncState", CfSetInSyncState(handle.get(), inSync ? CF_IN_SYNC_STATE_IN_SYNC : CF_IN_SYNC_STATE_NOT_IN_SYNC,
                                                   CF_SET_IN_SYNC_FLAG_NONE, usn.get()));
      },
      [usn](Napi::Env env) -> Napi::Value { return Napi::BigInt::New(env, static_cast<int64_t>(*usn)); });
}

Napi::Value ConvertToPlaceholder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring path = PathArg(info, 0, "path");
  std::vector<uint8_t> identity = BytesOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "identity");
  Napi::Object options = OptionsArg(info, 2);
  CF_CONVERT_FLAGS flags = CF_CONVERT_FLAG_NONE;
  if (BoolProperty(options, "markInSync", false)) flags |= CF_CONVERT_FLAG_MARK_IN_SYNC;
  if (BoolProperty(options, "onDemandPopulation", false)) flags |= CF_CONVERT_FLAG_ENABLE_ON_DEMAND_POPULATION;
  auto usn = std::make_shared<USN>(0);
  return RunTask(
      env, "tmount:convertToPlaceholder",
      [path, identity, flags, usn] {
        UniqueHandle handle = OpenForMetadata(path);
        Check("CfConvertToPlaceholder", CfConvertToPlaceholder(handle.get(), identity.empty() ? nullptr : identity.data(),
                                                               static_cast<DWORD>(identity.size()), flags, usn.get(), nullptr));
      },
      [usn](Napi::Env env) -> Napi::Value { return Napi::BigInt::New(env, static_cast<int64_t>(*usn)); });
}

Napi::Value Hydrate(const Napi::CallbackInfo& info) {
  std::wstring path = PathArg(info, 0, "path");
  return RunTask(
      info.Env(), "tmount:hydrate",
      [path] {
        UniqueHandle handle = OpenForMetadata(path);
        // Offset 0, length CF_EOF (-1): the whole file. Returns once this
        // process's provider has transferred every missing range.
        Check("CfHydratePlaceholder", CfHydratePlaceholder(handle.get(), Large(0), Large(-1), CF_HYDRATE_FLAG_NONE, nullptr));
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value Dehydrate(const Napi::CallbackInfo& info) {
  std::wstring path = PathArg(info, 0, "path");
  return RunTask(
      info.Env(), "tmount:dehydrate",
      [path] {
        ProtectedHandle handle(path, CF_OPEN_FILE_FLAG_EXCLUSIVE | CF_OPEN_FILE_FLAG_WRITE_ACCESS);
        handle.Use([](HANDLE win32) {
          Check("CfDehydratePlaceholder", CfDehydratePlaceholder(win32, Large(0), Large(-1), CF_DEHYDRATE_FLAG_NONE, nullptr));
        });
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value SetPinState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring path = PathArg(info, 0, "path");
  static const std::map<std::string, CF_PIN_STATE> kStates = {
      {"unspecified", CF_PIN_STATE_UNSPECIFIED}, {"pinned", CF_PIN_STATE_PINNED}, {"unpinned", CF_PIN_STATE_UNPINNED},
      {"excluded", CF_PIN_STATE_EXCLUDED},       {"inherit", CF_PIN_STATE_INHERIT},
  };
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "state must be a string");
  auto found = kStates.find(info[1].As<Napi::String>().Utf8Value());
  if (found == kStates.end()) throw Napi::TypeError::New(env, "unknown pin state");
  CF_PIN_STATE state = found->second;
  bool recurse = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return RunTask(
      env, "tmount:setPinState",
      [path, state, recurse] {
        UniqueHandle handle = OpenForMetadata(path);
        Check("CfSetPinState", CfSetPinState(handle.get(), state, recurse ? CF_SET_PIN_FLAG_RECURSE : CF_SET_PIN_FLAG_NONE, nullptr));
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace tmount
