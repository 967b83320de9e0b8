#pragma once

#include <fuse_lowlevel.h>
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "request.h"
#include "request_js.h"

struct uv_poll_s;

namespace tmount {

struct MountOptions {
  std::string fsname;
  std::string subtype;
  bool readonly = false;
  bool allowOther = false;
  bool defaultPermissions = false;
  bool writebackCache = false;
  uint32_t maxWrite = 1u << 20;
  // 0 keeps what the kernel offers.
  uint32_t maxReadahead = 0;
  unsigned threads = 1;
  // Read requests on the JS thread's event loop instead of loop threads.
  bool eventLoop = false;
};

// What the reply side must know about a request that JS has not answered yet.
struct Pending {
  fuse_req_t req;
  Op op;
  // read / readdir: the most bytes the kernel accepts; write: bytes received.
  uint64_t size;
  bool plus;
};

// One FUSE mount. The JS object owns it; while mounted it holds a strong
// reference to itself so that it cannot be collected under the FUSE threads.
//
// Threads:
//  - the JS thread runs every method exposed to JS, CallJs and the finalizer;
//  - `threads` loop threads read /dev/fuse and run the op callbacks (ops.cc),
//    or, with `eventLoop`, the JS thread itself reads /dev/fuse when libuv
//    reports it readable and hands each request to JS at once: one thread
//    wake-up fewer per request, which is most of a small request's latency;
//  - one supervisor thread starts the loops (or waits for the stop signal),
//    joins them, then tears the libfuse session down, so that the JS thread
//    never waits for the kernel.
//
// Lock order: lifeMutex_ before tableMutex_.
class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

  // Loop threads, from the op callbacks. Both take ownership of `request`.
  void Submit(fuse_req_t req, std::unique_ptr<Request> request);
  void SubmitForget(std::unique_ptr<Request> request);
  // Loop thread, while libfuse handles INIT.
  void Negotiate(fuse_conn_info* conn);
  // Loop threads: whether the kernel opens directories by itself once an
  // opendir is answered ENOSYS (Linux 5.1+), known from INIT on.
  bool KernelOpensDirs() const { return kernelOpensDirs_.load(std::memory_order_relaxed); }

  // JS thread: the TSFN's callback.
  static void CallJs(Napi::Env env, Napi::Function handler, Session* session, Request* request);
  // Registered with atexit(3) by the first mount.
  static void StopAllAtExit();
  // Whether this build can read requests on the event loop (it needs libuv's headers).
  static bool CanReadOnEventLoop();

 private:
  using Tsfn = Napi::TypedThreadSafeFunction<Session, Request, &Session::CallJs>;

  enum class State { kIdle, kMounted, kClosing, kClosed };

  // Result of looking up and removing a pending request. `life` keeps
  // lifeMutex_ held so that the session cannot be destroyed under the reply.
  struct Taken {
    std::unique_lock<std::mutex> life;
    Pending pending;
    bool live;
  };
  using Check = std::function<void(const Pending&)>;

  Napi::Value Mount(const Napi::CallbackInfo& info);
  Napi::Value Unmount(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalInode(const Napi::CallbackInfo& info);
  Napi::Value NotifyInvalEntry(const Napi::CallbackInfo& info);

  // replies.cc
  Napi::Value ReplyErr(const Napi::CallbackInfo& info);
  Napi::Value ReplyNone(const Napi::CallbackInfo& info);
  Napi::Value ReplyEntry(const Napi::CallbackInfo& info);
  Napi::Value ReplyCreate(const Napi::CallbackInfo& info);
  Napi::Value ReplyAttr(const Napi::CallbackInfo& info);
  Napi::Value ReplyReadlink(const Napi::CallbackInfo& info);
  Napi::Value ReplyOpen(const Napi::CallbackInfo& info);
  Napi::Value ReplyWrite(const Napi::CallbackInfo& info);
  Napi::Value ReplyBuf(const Napi::CallbackInfo& info);
  Napi::Value ReplyStatfs(const Napi::CallbackInfo& info);
  Napi::Value ReplyDirectory(const Napi::CallbackInfo& info);
  Taken Take(Napi::Env env, const char* method, uint64_t id, uint32_t allowedOps, const Check& check);

  bool HandToJs(std::unique_ptr<Request>& request);
  void Supervise();
  void Loop();
  // Event-loop mode, JS thread only.
  void StartReading(Napi::Env env);
  void StopReading();
  void ReadAvailable();
  static void OnReadable(uv_poll_s* poll, int status, int events);
  void Wake();
  void StopAndJoin();
  bool IsPending(uint64_t id);
  void AnswerAfterHandlerThrew(uint64_t id);
  void OnTsfnFinalized(Napi::Env env);
  static void OnEnvCleanup(Session* session);

  // Set by the constructor on the JS thread, read-only afterwards.
  std::string mountpoint_;
  MountOptions options_;

  // JS thread only.
  State state_ = State::kIdle;
  Napi::FunctionReference handler_;  // until mount() hands it to the TSFN
  std::optional<Napi::Promise::Deferred> closedDeferred_;
  Napi::Reference<Napi::Promise> closedPromise_;
  std::vector<Napi::Promise::Deferred> unmountWaiters_;
  std::thread supervisor_;
  Napi::Env::CleanupHook<void (*)(Session*), Session> cleanupHook_;
  bool cleanupHookActive_ = false;
  bool envTearingDown_ = false;
  // Event-loop mode: the handler JS requests go to, the poll watching
  // /dev/fuse (null once stopped), the buffer requests are read into, and
  // the async context callbacks run in (so that promises settle after each batch).
  Napi::FunctionReference inlineHandler_;
  uv_poll_s* poll_ = nullptr;
  fuse_buf inlineBuf_{};
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
  // The Float64Array JS reads each request's numbers from (see request_js.h),
  // given to the constructor. Reading its data pointer moved its storage off
  // V8's heap for good, and nothing detaches it (index.ts keeps it private),
  // so the pointer stays valid while the reference keeps the array alive.
  Napi::Reference<Napi::Float64Array> slots_;
  double* slotData_ = nullptr;

  // Created by mount() on the JS thread before any FUSE thread exists; loop
  // threads call NonBlockingCall; the supervisor releases it once, after the
  // loops have ended, which lets the process exit.
  Tsfn tsfn_;
  // A pipe that becomes readable (and stays so) when the loops must stop.
  // Created by mount(); written from any thread; closed on the JS thread
  // after the supervisor has been joined.
  int wakeRead_ = -1;
  int wakeWrite_ = -1;

  // Guards the lifetime of se_: held by the JS thread around every
  // fuse_reply_* and notify call, and by the supervisor while it unmounts and
  // destroys the session. Loop threads use se_ without it: they have all
  // exited before the supervisor destroys it.
  std::mutex lifeMutex_;
  fuse_session* se_ = nullptr;
  // Written under lifeMutex_ when se_ is gone; read without it by CallJs.
  std::atomic<bool> ended_{false};
  std::atomic<bool> kernelOpensDirs_{false};

  // Guards pending_ and nextId_; taken by loop threads on every request and
  // by the JS thread on every reply, held only for map operations.
  std::mutex tableMutex_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t nextId_ = 1;
};

}  // namespace tmount
