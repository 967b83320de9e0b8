#include "registration.h"

#include "common.h"

#include <sddl.h>

// C++/WinRT rather than the raw COM ABI for StorageProviderSyncRootManager:
// it ships in the Windows SDK as headers only, projects the three calls
// needed here as plain methods, and turns failed HRESULTs into exceptions.
// The ABI route (WRL, HSTRING references, activation factories, an
// IAsyncOperation completion handler for GetFolderFromPathAsync) is several
// times the code for the same calls.
#include <winrt/base.h>
#include <winrt/Windows.Foundation.h>
#include <winrt/Windows.Foundation.Collections.h>
#include <winrt/Windows.Security.Cryptography.h>
#include <winrt/Windows.Storage.h>
#include <winrt/Windows.Storage.Provider.h>
#include <winrt/Windows.Storage.Streams.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace tmount {

namespace {

// Names tmount as the provider of its sync roots, to the shell and to cfapi alike.
constexpr GUID kProviderId = {0x6f0c5b8e, 0x2d4a, 0x4c3e, {0x9a, 0x71, 0x3e, 0x5d, 0x8b, 0x1f, 0x64, 0xc2}};

struct Registration {
  std::wstring id;
  std::wstring path;
  std::wstring displayName;
  std::wstring icon;
  std::wstring version;
  std::wstring context;
  bool progressive = true;
};

struct Registered {
  bool shell = false;
  std::string detail;
};

// COM for the calling pool thread, for the length of one task: WinRT
// activation needs an apartment, and in the multithreaded one .get() may
// block on an async operation.
class ComScope {
 public:
  ComScope() : hr_(CoInitializeEx(nullptr, COINIT_MULTITHREADED)) {}
  ComScope(const ComScope&) = delete;
  ComScope& operator=(const ComScope&) = delete;
  ~ComScope() {
    if (SUCCEEDED(hr_)) CoUninitialize();
  }

 private:
  HRESULT hr_;
};

CallError FromWinrt(const winrt::hresult_error& error, const char* call) {
  return CallError{static_cast<HRESULT>(static_cast<int32_t>(error.code())), call};
}

void RegisterWithShell(const Registration& r) {
  namespace provider = winrt::Windows::Storage::Provider;
  namespace crypto = winrt::Windows::Security::Cryptography;
  provider::StorageProviderSyncRootInfo info;
  info.Id(r.id.c_str());
  info.Path(winrt::Windows::Storage::StorageFolder::GetFolderFromPathAsync(r.path.c_str()).get());
  info.DisplayNameResource(r.displayName.c_str());
  info.IconResource(r.icon.c_str());
  info.HydrationPolicy(r.progressive ? provider::StorageProviderHydrationPolicy::Progressive : provider::StorageProviderHydrationPolicy::Full);
  info.HydrationPolicyModifier(provider::StorageProviderHydrationPolicyModifier::None);
  // Full, not AlwaysFull: the platform asks (FETCH_PLACEHOLDERS) when a directory is first opened.
  info.PopulationPolicy(provider::StorageProviderPopulationPolicy::Full);
  info.InSyncPolicy(provider::StorageProviderInSyncPolicy::FileLastWriteTime);
  info.HardlinkPolicy(provider::StorageProviderHardlinkPolicy::None);
  info.ShowSiblingsAsGroup(false);
  info.Version(r.version.c_str());
  info.Context(crypto::CryptographicBuffer::ConvertStringToBinary(r.context.c_str(), crypto::BinaryStringEncoding::Utf8));
  try {
    info.ProviderId(winrt::guid(kProviderId.Data1, kProviderId.Data2, kProviderId.Data3,
                                std::array<uint8_t, 8>{kProviderId.Data4[0], kProviderId.Data4[1], kProviderId.Data4[2], kProviderId.Data4[3],
                                                       kProviderId.Data4[4], kProviderId.Data4[5], kProviderId.Data4[6], kProviderId.Data4[7]}));
  } catch (const winrt::hresult_error&) {
    // Windows before 10 2004 has no ProviderId; the registration works without it.
  }
  provider::StorageProviderSyncRootManager::Register(info);
}

// Without the shell (no navigation pane entry), for when
// StorageProviderSyncRootManager refuses: cfapi itself still works.
void RegisterWithCfapi(const Registration& r) {
  CF_SYNC_REGISTRATION registration = {};
  registration.StructSize = sizeof(registration);
  registration.ProviderName = L"tmount";
  registration.ProviderVersion = r.version.c_str();
  registration.ProviderId = kProviderId;
  // Some SDKs give the policy members constructors: zero the whole struct rather than rely on aggregate rules.
  CF_SYNC_POLICIES policies;
  ZeroMemory(&policies, sizeof(policies));
  policies.StructSize = sizeof(policies);
  policies.Hydration.Primary = r.progressive ? CF_HYDRATION_POLICY_PROGRESSIVE : CF_HYDRATION_POLICY_FULL;
  policies.Hydration.Modifier = CF_HYDRATION_POLICY_MODIFIER_NONE;
  policies.Population.Primary = CF_POPULATION_POLICY_FULL;
  policies.Population.Modifier = CF_POPULATION_POLICY_MODIFIER_NONE;
  policies.InSync = CF_INSYNC_POLICY_TRACK_FILE_LAST_WRITE_TIME;
  policies.HardLink = CF_HARDLINK_POLICY_NONE;
  Check("CfRegisterSyncRoot", CfRegisterSyncRoot(r.path.c_str(), &registration, &policies, CF_REGISTER_FLAG_UPDATE));
}

std::wstring StringProperty(Napi::Env env, const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsString()) throw Napi::TypeError::New(env, std::string("registration.") + name + " must be a string");
  return Wide(value.As<Napi::String>().Utf8Value());
}

}  // namespace

Napi::Value CurrentUserSid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    HANDLE raw = nullptr;
    CheckWin32("OpenProcessToken", OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw));
    UniqueHandle token(raw);
    DWORD size = 0;
    GetTokenInformation(token.get(), TokenUser, nullptr, 0, &size);
    std::vector<uint8_t> buffer(size);
    CheckWin32("GetTokenInformation(TokenUser)", GetTokenInformation(token.get(), TokenUser, buffer.data(), size, &size));
    wchar_t* text = nullptr;
    CheckWin32("ConvertSidToStringSidW", ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buffer.data())->User.Sid, &text));
    std::string sid = Utf8(text);
    LocalFree(text);
    return Napi::String::New(env, sid);
  } catch (const CallError& error) {
    throw ToJsError(env, error);
  }
}

Napi::Value RegisterSyncRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "registration must be an object");
  Napi::Object options = info[0].As<Napi::Object>();
  auto registration = std::make_shared<Registration>();
  registration->id = StringProperty(env, options, "id");
  registration->path = StringProperty(env, options, "path");
  registration->displayName = StringProperty(env, options, "displayName");
  registration->icon = StringProperty(env, options, "iconResource");
  registration->version = StringProperty(env, options, "version");
  registration->context = StringProperty(env, options, "context");
  std::wstring hydration = StringProperty(env, options, "hydration");
  if (hydration != L"progressive" && hydration != L"full") throw Napi::TypeError::New(env, "registration.hydration must be 'progressive' or 'full'");
  registration->progressive = hydration == L"progressive";
  auto registered = std::make_shared<Registered>();
  return RunTask(
      env, "tmount:registerSyncRoot",
      [registration, registered] {
        ComScope com;
        try {
          RegisterWithShell(*registration);
          registered->shell = true;
          return;
        } catch (const winrt::hresult_error& error) {
          registered->detail = Describe(FromWinrt(error, "StorageProviderSyncRootManager.Register"));
        }
        try {
          RegisterWithCfapi(*registration);
        } catch (const CallError& error) {
          throw CallError{error.hr, "CfRegisterSyncRoot (after " + registered->detail + ")"};
        }
      },
      [registered](Napi::Env env) -> Napi::Value {
        Napi::Object result = Napi::Object::New(env);
        result.Set("shell", Napi::Boolean::New(env, registered->shell));
        result.Set("detail", Napi::String::New(env, registered->detail));
        return result;
      });
}

Napi::Value UnregisterSyncRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::wstring id = PathArg(info, 0, "id");
  std::wstring path = PathArg(info, 1, "path");
  return RunTask(
      env, "tmount:unregisterSyncRoot",
      [id, path] {
        ComScope com;
        std::string shellFailure;
        try {
          winrt::Windows::Storage::Provider::StorageProviderSyncRootManager::Unregister(id.c_str());
        } catch (const winrt::hresult_error& error) {
          shellFailure = Describe(FromWinrt(error, "StorageProviderSyncRootManager.Unregister"));
        }
        // After the shell's unregistration this usually finds nothing left to do; its failure then means nothing.
        HRESULT hr = CfUnregisterSyncRoot(path.c_str());
        if (!shellFailure.empty() && FAILED(hr)) ThrowCall("CfUnregisterSyncRoot (after " + shellFailure + ")", hr);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace tmount
