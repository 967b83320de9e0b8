#pragma once

#include <fuse_lowlevel.h>
#include <napi.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <ctime>
#include <string>

// JS <-> libfuse value conversions. All run on the JS thread; each throws a
// Napi::TypeError naming `what` when a value does not fit, before anything
// has been sent to the kernel.
namespace tmount {

// Largest integer a JS number carries exactly (Number.MAX_SAFE_INTEGER).
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

double ToFinite(const Napi::Value& value, const std::string& what);
uint64_t ToUnsigned(const Napi::Value& value, const std::string& what, uint64_t max = kMaxSafeInteger);
int64_t ToSigned(const Napi::Value& value, const std::string& what);
std::string ToString(const Napi::Value& value, const std::string& what);
Napi::Object ToObject(const Napi::Value& value, const std::string& what);
// undefined means false.
bool ToOptionalBool(const Napi::Object& object, const char* key, const std::string& what);
// A single path component: not empty, no '/' and no NUL.
std::string ToName(const Napi::Value& value, const std::string& what);

struct stat ToStat(const Napi::Value& value, const std::string& what);
fuse_entry_param ToEntry(const Napi::Value& value, const std::string& what);
fuse_file_info ToOpenReply(const Napi::Value& value, const std::string& what);
struct statvfs ToStatvfs(const Napi::Value& value, const std::string& what);

timespec MsToTimespec(double ms);
double TimespecToMs(const timespec& ts);

}  // namespace tmount
