#include "convert.h"

#include <cmath>
#include <cstring>

namespace tmount {
namespace {

[[noreturn]] void Fail(const Napi::Value& value, const std::string& what, const char* expected) {
  throw Napi::TypeError::New(value.Env(), what + " must be " + expected);
}

Napi::Value Field(const Napi::Object& object, const char* key) { return object.Get(key); }

std::string Join(const std::string& what, const char* key) { return what + "." + key; }

}  // namespace

double ToFinite(const Napi::Value& value, const std::string& what) {
  if (!value.IsNumber()) Fail(value, what, "a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number)) Fail(value, what, "a finite number");
  return number;
}

uint64_t ToUnsigned(const Napi::Value& value, const std::string& what, uint64_t max) {
  double number = ToFinite(value, what);
  if (number < 0 || number != std::floor(number) || number > static_cast<double>(max)) {
    Fail(value, what, ("an integer from 0 to " + std::to_string(max)).c_str());
  }
  return static_cast<uint64_t>(number);
}

int64_t ToSigned(const Napi::Value& value, const std::string& what) {
  double number = ToFinite(value, what);
  const double limit = static_cast<double>(kMaxSafeInteger);
  if (number != std::floor(number) || number > limit || number < -limit) Fail(value, what, "a safe integer");
  return static_cast<int64_t>(number);
}

std::string ToString(const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) Fail(value, what, "a string");
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.find('\0') != std::string::npos) Fail(value, what, "a string without NUL characters");
  return text;
}

Napi::Object ToObject(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) Fail(value, what, "an object");
  return value.As<Napi::Object>();
}

bool ToOptionalBool(const Napi::Object& object, const char* key, const std::string& what) {
  Napi::Value value = Field(object, key);
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) Fail(value, Join(what, key), "a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ToName(const Napi::Value& value, const std::string& what) {
  std::string name = ToString(value, what);
  if (name.empty() || name.find('/') != std::string::npos) Fail(value, what, "a non-empty name without '/'");
  return name;
}

struct stat ToStat(const Napi::Value& value, const std::string& what) {
  Napi::Object attr = ToObject(value, what);
  struct stat st;
  std::memset(&st, 0, sizeof st);
  st.st_ino = ToUnsigned(Field(attr, "ino"), Join(what, "ino"));
  st.st_mode = static_cast<mode_t>(ToUnsigned(Field(attr, "mode"), Join(what, "mode"), UINT32_MAX));
  st.st_nlink = static_cast<nlink_t>(ToUnsigned(Field(attr, "nlink"), Join(what, "nlink"), UINT32_MAX));
  st.st_uid = static_cast<uid_t>(ToUnsigned(Field(attr, "uid"), Join(what, "uid"), UINT32_MAX));
  st.st_gid = static_cast<gid_t>(ToUnsigned(Field(attr, "gid"), Join(what, "gid"), UINT32_MAX));
  st.st_size = static_cast<off_t>(ToUnsigned(Field(attr, "size"), Join(what, "size")));
  st.st_blocks = static_cast<blkcnt_t>(ToUnsigned(Field(attr, "blocks"), Join(what, "blocks")));
  st.st_blksize = static_cast<blksize_t>(ToUnsigned(Field(attr, "blksize"), Join(what, "blksize"), UINT32_MAX));
  st.st_atim = MsToTimespec(ToFinite(Field(attr, "atimeMs"), Join(what, "atimeMs")));
  st.st_mtim = MsToTimespec(ToFinite(Field(attr, "mtimeMs"), Join(what, "mtimeMs")));
  st.st_ctim = MsToTimespec(ToFinite(Field(attr, "ctimeMs"), Join(what, "ctimeMs")));
  return st;
}

fuse_entry_param ToEntry(const Napi::Value& value, const std::string& what) {
  Napi::Object entry = ToObject(value, what);
  fuse_entry_param param;
  std::memset(&param, 0, sizeof param);
  param.ino = ToUnsigned(Field(entry, "ino"), Join(what, "ino"));
  param.generation = ToUnsigned(Field(entry, "generation"), Join(what, "generation"));
  param.attr = ToStat(Field(entry, "attr"), Join(what, "attr"));
  param.entry_timeout = ToFinite(Field(entry, "entryTimeout"), Join(what, "entryTimeout"));
  param.attr_timeout = ToFinite(Field(entry, "attrTimeout"), Join(what, "attrTimeout"));
  if (param.entry_timeout < 0) Fail(value, Join(what, "entryTimeout"), "at least 0");
  if (param.attr_timeout < 0) Fail(value, Join(what, "attrTimeout"), "at least 0");
  return param;
}

fuse_file_info ToOpenReply(const Napi::Value& value, const std::string& what) {
  Napi::Object open = ToObject(value, what);
  fuse_file_info fi;
  std::memset(&fi, 0, sizeof fi);
  fi.fh = ToUnsigned(Field(open, "fh"), Join(what, "fh"));
  fi.direct_io = ToOptionalBool(open, "directIo", what);
  fi.keep_cache = ToOptionalBool(open, "keepCache", what);
  fi.nonseekable = ToOptionalBool(open, "nonSeekable", what);
  // Lets the kernel keep a directory's entries in its page cache between
  // opendirs (Linux 4.20+), so a warm `find` or `git status` stays in the kernel.
  fi.cache_readdir = ToOptionalBool(open, "cacheDir", what);
  return fi;
}

struct statvfs ToStatvfs(const Napi::Value& value, const std::string& what) {
  Napi::Object object = ToObject(value, what);
  struct statvfs st;
  std::memset(&st, 0, sizeof st);
  st.f_bsize = ToUnsigned(Field(object, "bsize"), Join(what, "bsize"));
  st.f_frsize = ToUnsigned(Field(object, "frsize"), Join(what, "frsize"));
  st.f_blocks = ToUnsigned(Field(object, "blocks"), Join(what, "blocks"));
  st.f_bfree = ToUnsigned(Field(object, "bfree"), Join(what, "bfree"));
  st.f_bavail = ToUnsigned(Field(object, "bavail"), Join(what, "bavail"));
  st.f_files = ToUnsigned(Field(object, "files"), Join(what, "files"));
  st.f_ffree = ToUnsigned(Field(object, "ffree"), Join(what, "ffree"));
  st.f_favail = ToUnsigned(Field(object, "favail"), Join(what, "favail"));
  st.f_namemax = ToUnsigned(Field(object, "namemax"), Join(what, "namemax"));
  return st;
}

timespec MsToTimespec(double ms) {
  // floor, not truncation, so that times before 1970 keep 0 <= tv_nsec < 1e9.
  double seconds = std::floor(ms / 1000);
  long nanos = std::lround((ms - seconds * 1000) * 1e6);
  if (nanos >= 1000000000L) {
    seconds += 1;
    nanos -= 1000000000L;
  }
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = nanos;
  return ts;
}

double TimespecToMs(const timespec& ts) {
  return static_cast<double>(ts.tv_sec) * 1000 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace tmount
