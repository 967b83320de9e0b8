#include "mountpoint.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tmount {
namespace {

std::string Failed(const std::string& path, int err) {
  return "fuse_session_mount(" + path + ") failed: " + std::strerror(err);
}

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

// /proc/self/mountinfo writes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) &&
        IsOctal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// The filesystem type mounted at `path`, or "" when nothing is. On systems
// without /proc/self/mountinfo (FreeBSD) this finds nothing and mount(2)
// itself decides.
std::string MountedType(const std::string& path) {
  std::ifstream table("/proc/self/mountinfo");
  std::string line;
  while (std::getline(table, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    std::istringstream fields(line);
    std::string id, parent, device, root, mountpoint;
    if (!(fields >> id >> parent >> device >> root >> mountpoint)) continue;
    if (Unescape(mountpoint) != path) continue;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) return "unknown";
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    return type.empty() ? "unknown" : type;
  }
  return "";
}

}  // namespace

MountpointCheck CheckMountpoint(const std::string& path) {
  MountpointCheck check;
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();

  size_t slash = trimmed.rfind('/');
  std::string dir = slash == 0 ? "/" : trimmed.substr(0, slash);
  std::string base = trimmed.substr(slash + 1);
  std::string resolved;
  if (base.empty() || base == "." || base == "..") {
    resolved = trimmed;
  } else {
    char buffer[PATH_MAX];
    if (realpath(dir.c_str(), buffer) == nullptr) {
      check.error = Failed(path, errno);
      return check;
    }
    resolved = std::string(buffer) == "/" ? "/" + base : std::string(buffer) + "/" + base;
  }

  std::string type = MountedType(resolved);
  if (!type.empty()) {
    check.error = "fuse_session_mount(" + path + ") refused: " + resolved + " is already a mount point (" + type +
                  "); unmount it first";
    return check;
  }

  struct stat st;
  if (stat(resolved.c_str(), &st) != 0) {
    check.error = Failed(path, errno);
    return check;
  }
  if (!S_ISDIR(st.st_mode)) {
    check.error = Failed(path, ENOTDIR);
    return check;
  }
  check.path = resolved;
  return check;
}

}  // namespace tmount
