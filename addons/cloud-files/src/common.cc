#include "common.h"

#include <cstdio>
#include <map>
#include <stdexcept>
#include <utility>

namespace tmount {

void ThrowCall(const std::string& call, HRESULT hr) {
  throw CallError{hr, call};
}

void CheckWin32(const char* call, BOOL ok) {
  if (!ok) ThrowCall(call, HRESULT_FROM_WIN32(GetLastError()));
}

std::wstring Wide(const std::string& utf8) {
  if (utf8.empty()) return std::wstring();
  int length = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  if (length <= 0) ThrowCall("MultiByteToWideChar", HRESULT_FROM_WIN32(GetLastError()));
  std::wstring wide(static_cast<size_t>(length), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), static_cast<int>(utf8.size()), wide.data(), length);
  return wide;
}

std::string Utf8(const wchar_t* wide) {
  if (wide == nullptr || *wide == L'\0') return std::string();
  int length = WideCharToMultiByte(CP_UTF8, 0, wide, -1, nullptr, 0, nullptr, nullptr);
  if (length <= 1) return std::string();
  std::string utf8(static_cast<size_t>(length), '\0');
  WideCharToMultiByte(CP_UTF8, 0, wide, -1, utf8.data(), length, nullptr, nullptr);
  utf8.resize(static_cast<size_t>(length) - 1);
  return utf8;
}

std::string Describe(const CallError& error) {
  wchar_t* text = nullptr;
  DWORD length = FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                                static_cast<DWORD>(error.hr), 0, reinterpret_cast<wchar_t*>(&text), 0, nullptr);
  std::string message = length > 0 ? Utf8(text) : std::string();
  if (text != nullptr) LocalFree(text);
  while (!message.empty() && (message.back() == '\r' || message.back() == '\n' || message.back() == ' ')) message.pop_back();
  char code[16];
  std::snprintf(code, sizeof code, "0x%08lX", static_cast<unsigned long>(error.hr));
  return error.call + " failed: " + code + (message.empty() ? "" : " (" + message + ")");
}

Napi::Error ToJsError(Napi::Env env, const CallError& error) {
  Napi::Error js = Napi::Error::New(env, Describe(error));
  js.Value().Set("hresult", Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(error.hr))));
  js.Value().Set("call", Napi::String::New(env, error.call));
  return js;
}

// 100 ns intervals between 1601-01-01 and 1970-01-01.
static constexpr int64_t kUnixEpochAsFileTime = 116444736000000000LL;

LARGE_INTEGER FileTimeFromMs(double ms) {
  return Large(static_cast<int64_t>(ms * 10000.0) + kUnixEpochAsFileTime);
}

double MsFromFileTime(LARGE_INTEGER time) {
  return static_cast<double>(time.QuadPart - kUnixEpochAsFileTime) / 10000.0;
}

NTSTATUS StatusFromName(Napi::Env env, const std::string& name) {
  // Cloud-file codes where one fits; classic ones where Explorer shows the
  // classic message better (a refused delete of a non-empty folder).
  static const std::map<std::string, NTSTATUS> kStatuses = {
      {"success", STATUS_SUCCESS},
      {"unsuccessful", STATUS_CLOUD_FILE_UNSUCCESSFUL},
      {"notFound", STATUS_OBJECT_NAME_NOT_FOUND},
      {"accessDenied", STATUS_CLOUD_FILE_ACCESS_DENIED},
      {"notEmpty", STATUS_DIRECTORY_NOT_EMPTY},
      {"exists", STATUS_OBJECT_NAME_COLLISION},
      {"timeout", STATUS_CLOUD_FILE_REQUEST_TIMEOUT},
      {"networkUnavailable", STATUS_CLOUD_FILE_NETWORK_UNAVAILABLE},
      {"notSupported", STATUS_CLOUD_FILE_NOT_SUPPORTED},
      {"inUse", STATUS_CLOUD_FILE_IN_USE},
      {"diskFull", STATUS_DISK_FULL},
      {"invalidRequest", STATUS_CLOUD_FILE_INVALID_REQUEST},
  };
  auto found = kStatuses.find(name);
  if (found == kStatuses.end()) throw Napi::TypeError::New(env, "unknown Cloud Files status '" + name + "'");
  return found->second;
}

std::wstring PathArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return Wide(info[index].As<Napi::String>().Utf8Value());
}

uint32_t IdArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), "the request id must be a number");
  return info[index].As<Napi::Number>().Uint32Value();
}

int64_t IntegerOf(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  return value.As<Napi::Number>().Int64Value();
}

bool BoolProperty(const Napi::Object& object, const char* name, bool fallback) {
  Napi::Value value = object.Get(name);
  return value.IsBoolean() ? value.As<Napi::Boolean>().Value() : fallback;
}

USN UsnOf(Napi::Env env, const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return 0;
  if (!value.IsBigInt()) throw Napi::TypeError::New(env, "a USN must be a bigint");
  bool lossless = false;
  return value.As<Napi::BigInt>().Int64Value(&lossless);
}

namespace {

// One RunTask: Execute on a pool thread, OnOK on the JS thread. SetError is
// never used, so OnOK always runs and settles the promise either way.
class Task : public Napi::AsyncWorker {
 public:
  Task(Napi::Env env, const char* name, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const CallError& error) {
      failed_ = true;
      error_ = error;
    } catch (const std::exception& error) {
      failed_ = true;
      error_ = CallError{E_FAIL, error.what()};
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  bool failed_ = false;
  CallError error_{S_OK, std::string()};
};

}  // namespace

Napi::Promise RunTask(Napi::Env env, const char* name, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done) {
  auto* task = new Task(env, name, std::move(work), std::move(done));
  Napi::Promise promise = task->Promise();
  // The worker deletes itself after OnOK.
  task->Queue();
  return promise;
}

UniqueHandle OpenForMetadata(const std::wstring& path) {
  HANDLE handle = CreateFileW(path.c_str(), FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | WRITE_DAC,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                              FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (handle == INVALID_HANDLE_VALUE) ThrowCall("CreateFileW(" + Utf8(path) + ")", HRESULT_FROM_WIN32(GetLastError()));
  return UniqueHandle(handle);
}

ProtectedHandle::ProtectedHandle(const std::wstring& path, CF_OPEN_FILE_FLAGS flags) {
  HRESULT hr = CfOpenFileWithOplock(path.c_str(), flags, &handle_);
  if (FAILED(hr)) {
    handle_ = INVALID_HANDLE_VALUE;
    ThrowCall("CfOpenFileWithOplock(" + Utf8(path) + ")", hr);
  }
}

ProtectedHandle::~ProtectedHandle() {
  if (handle_ != INVALID_HANDLE_VALUE && handle_ != nullptr) CfCloseHandle(handle_);
}

void ProtectedHandle::Use(const std::function<void(HANDLE)>& use) {
  if (!CfReferenceProtectedHandle(handle_)) ThrowCall("CfReferenceProtectedHandle", E_HANDLE);
  struct Release {
    HANDLE handle;
    ~Release() { CfReleaseProtectedHandle(handle); }
  } release{handle_};
  use(CfGetWin32HandleFromProtectedHandle(handle_));
}

}  // namespace tmount
