#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

#include "session.h"

#ifdef TMOUNT_HAVE_UV
#include <uv.h>
#endif

// Event-loop mode: /dev/fuse is one more descriptor libuv watches on the JS
// thread, so a request reaches JS without waking a second thread.
namespace tmount {

#ifdef TMOUNT_HAVE_UV

namespace {

// Requests handled per readable event, so that sockets and timers get their
// turn under a steady stream (their replies are what unblocks the kernel).
constexpr int kMaxBatch = 64;

}  // namespace

bool Session::CanReadOnEventLoop() { return true; }

void Session::StartReading(Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "mount: no libuv event loop to read /dev/fuse on");
  }
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "tmount-fuse");
  auto* poll = new uv_poll_t;
  poll->data = this;
  int res = uv_poll_init(loop, poll, fuse_session_fd(se_));
  if (res == 0) res = uv_poll_start(poll, UV_READABLE, &Session::OnReadable);
  if (res != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
    throw Napi::Error::New(env, std::string("mount: cannot watch /dev/fuse on the event loop: ") + uv_strerror(res));
  }
  poll_ = poll;
}

void Session::StopReading() {
  if (poll_ == nullptr) return;
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
  poll_ = nullptr;
}

void Session::OnReadable(uv_poll_t* poll, int status, int) {
  auto* session = static_cast<Session*>(poll->data);
  if (status < 0) {
    // The descriptor is broken: end the mount as a failed read would.
    session->StopReading();
    session->Wake();
    return;
  }
  session->ReadAvailable();
}

void Session::ReadAvailable() {
  Napi::Env env = inlineHandler_.Env();
  Napi::HandleScope handles(env);
  // Microtasks run when this scope closes: replies JS gives from promise
  // callbacks go out once per batch.
  Napi::CallbackScope scope(env, *asyncContext_);
  for (int handled = 0; handled < kMaxBatch && poll_ != nullptr;) {
    // Another reader (none in this mode) or a request the kernel withdrew: EAGAIN.
    // An unmount or an aborted connection reads as ENODEV, which returns 0.
    int res = fuse_session_receive_buf(se_, &inlineBuf_);
    if (res == -EINTR) continue;
    if (res == -EAGAIN) return;
    if (res <= 0 || fuse_session_exited(se_)) {
      StopReading();
      Wake();
      return;
    }
    Napi::HandleScope perRequest(env);
    fuse_session_process_buf(se_, &inlineBuf_);
    ++handled;
  }
}

#else

bool Session::CanReadOnEventLoop() { return false; }

void Session::StartReading(Napi::Env env) {
  throw Napi::Error::New(env, "mount: this build cannot read /dev/fuse on the event loop (built without libuv's headers)");
}

void Session::StopReading() {}

void Session::OnReadable(uv_poll_s*, int, int) {}

void Session::ReadAvailable() {}

#endif

}  // namespace tmount
