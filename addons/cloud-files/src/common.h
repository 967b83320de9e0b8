#pragma once

// ntstatus.h holds the STATUS_* codes completions carry; windows.h would
// define a few of them again unless told not to.
#ifndef NOMINMAX
#define NOMINMAX
#endif
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winioctl.h>
#include <cfapi.h>

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>

// Older SDKs lack some of these names; the values are the ones ntstatus.h
// gives them where it has them.
#ifndef STATUS_CLOUD_FILE_NETWORK_UNAVAILABLE
#define STATUS_CLOUD_FILE_NETWORK_UNAVAILABLE ((NTSTATUS)0xC000CF11L)
#endif
#ifndef STATUS_CLOUD_FILE_UNSUCCESSFUL
#define STATUS_CLOUD_FILE_UNSUCCESSFUL ((NTSTATUS)0xC000CF12L)
#endif
#ifndef STATUS_CLOUD_FILE_IN_USE
#define STATUS_CLOUD_FILE_IN_USE ((NTSTATUS)0xC000CF14L)
#endif
#ifndef STATUS_CLOUD_FILE_ACCESS_DENIED
#define STATUS_CLOUD_FILE_ACCESS_DENIED ((NTSTATUS)0xC000CF18L)
#endif
#ifndef STATUS_CLOUD_FILE_NOT_SUPPORTED
#define STATUS_CLOUD_FILE_NOT_SUPPORTED ((NTSTATUS)0xC000CF0AL)
#endif
#ifndef STATUS_CLOUD_FILE_INVALID_REQUEST
#define STATUS_CLOUD_FILE_INVALID_REQUEST ((NTSTATUS)0xC000CF0BL)
#endif
#ifndef STATUS_CLOUD_FILE_PROVIDER_TERMINATED
#define STATUS_CLOUD_FILE_PROVIDER_TERMINATED ((NTSTATUS)0xC000CF1DL)
#endif
#ifndef STATUS_CLOUD_FILE_REQUEST_TIMEOUT
#define STATUS_CLOUD_FILE_REQUEST_TIMEOUT ((NTSTATUS)0xC000CF1FL)
#endif

#ifndef ERROR_NOT_A_CLOUD_FILE
#define ERROR_NOT_A_CLOUD_FILE 376L
#endif
#ifndef CF_PLACEHOLDER_MAX_FILE_IDENTITY_LENGTH
#define CF_PLACEHOLDER_MAX_FILE_IDENTITY_LENGTH 4096
#endif

// The ParamSize of CF_OPERATION_PARAMETERS for one member of its union.
#ifndef CF_SIZE_OF_OP_PARAM
#define CF_SIZE_OF_OP_PARAM(field) \
  static_cast<ULONG>(FIELD_OFFSET(CF_OPERATION_PARAMETERS, field) + RTL_FIELD_SIZE(CF_OPERATION_PARAMETERS, field))
#endif

namespace tmount {

// A failed Windows call: thrown on a pool or cfapi thread, turned into a JS
// Error (message naming the call and the HRESULT, `hresult` property) on
// the JS thread.
struct CallError {
  HRESULT hr;
  std::string call;
};

[[noreturn]] void ThrowCall(const std::string& call, HRESULT hr);
inline void Check(const char* call, HRESULT hr) {
  if (FAILED(hr)) ThrowCall(call, hr);
}
// For BOOL-returning calls that report through GetLastError.
void CheckWin32(const char* call, BOOL ok);

std::wstring Wide(const std::string& utf8);
std::string Utf8(const wchar_t* wide);
inline std::string Utf8(const std::wstring& wide) { return Utf8(wide.c_str()); }

// "<call> failed: 0x8007017C (The cloud operation is invalid.)"
std::string Describe(const CallError& error);
Napi::Error ToJsError(Napi::Env env, const CallError& error);

// FILETIME (100 ns since 1601) <-> ms since the Unix epoch.
LARGE_INTEGER FileTimeFromMs(double ms);
double MsFromFileTime(LARGE_INTEGER time);
inline LARGE_INTEGER Large(int64_t value) {
  LARGE_INTEGER large;
  large.QuadPart = value;
  return large;
}

// The NTSTATUS of a CfStatus name from addon-types.ts; throws a TypeError
// (JS thread) for an unknown one.
NTSTATUS StatusFromName(Napi::Env env, const std::string& name);

// Argument readers for the JS thread; each throws a TypeError naming the
// argument when it has the wrong type.
std::wstring PathArg(const Napi::CallbackInfo& info, size_t index, const char* name);
uint32_t IdArg(const Napi::CallbackInfo& info, size_t index);
int64_t IntegerOf(Napi::Env env, const Napi::Value& value, const char* name);
bool BoolProperty(const Napi::Object& object, const char* name, bool fallback);
// An optional USN: a bigint, or undefined (0).
USN UsnOf(Napi::Env env, const Napi::Value& value);

// Runs `work` on a libuv pool thread and settles the returned promise on
// the JS thread: resolved with `done(env)`, or rejected with the CallError
// `work` threw. `work` must not touch JS values; `done` runs on the JS
// thread only when `work` succeeded.
Napi::Promise RunTask(Napi::Env env, const char* name, std::function<void()> work,
                      std::function<Napi::Value(Napi::Env)> done);

// Owns a Win32 HANDLE; closes it on scope exit.
class UniqueHandle {
 public:
  explicit UniqueHandle(HANDLE handle) : handle_(handle) {}
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() {
    if (handle_ != INVALID_HANDLE_VALUE && handle_ != nullptr) CloseHandle(handle_);
  }
  HANDLE get() const { return handle_; }

 private:
  HANDLE handle_;
};

// Opens a file or directory for cfapi calls that change placeholder
// metadata. WRITE_DAC satisfies their "WRITE_DATA or WRITE_DAC" rule
// without a data access, so it neither triggers hydration nor collides with
// the share mode of an application that has the file open.
UniqueHandle OpenForMetadata(const std::wstring& path);

// CfOpenFileWithOplock's protected handle, for the calls that need
// exclusiveness (dehydration). Use() lends the Win32 handle while a
// reference is held, so an oplock break cannot close it under the call.
class ProtectedHandle {
 public:
  ProtectedHandle(const std::wstring& path, CF_OPEN_FILE_FLAGS flags);
  ProtectedHandle(const ProtectedHandle&) = delete;
  ProtectedHandle& operator=(const ProtectedHandle&) = delete;
  ~ProtectedHandle();
  void Use(const std::function<void(HANDLE)>& use);

 private:
  HANDLE handle_ = INVALID_HANDLE_VALUE;
};

}  // namespace tmount
