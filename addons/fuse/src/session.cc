#include "session.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <unordered_set>

#include "convert.h"
#include "mountpoint.h"
#include "ops.h"
#include "request_js.h"

namespace tmount {
namespace {

constexpr unsigned kMaxThreads = 16;
constexpr uint32_t kMinMaxWrite = 4096;
constexpr uint32_t kMaxBytes = 1u << 30;
// The kernel queues readahead and async direct I/O as "background" requests
// and stops at max_background (12 by default): too few to keep a pipelined
// SFTP connection busy. Unprivileged mounts are capped by the fuse module's
// max_user_bgreq anyway.
constexpr unsigned kMaxBackground = 64;
constexpr unsigned kCongestionThreshold = 48;

std::string ErrnoText(int err) { return std::strerror(err); }

// libfuse splits -o on commas and unescapes backslashes (fuse_opt.c).
std::string EscapeOption(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

MountOptions ParseOptions(const Napi::Value& value) {
  const std::string what = "FuseSession: options";
  Napi::Object object = ToObject(value, what);
  MountOptions options;
  options.fsname = ToString(object.Get("fsname"), what + ".fsname");
  options.subtype = ToString(object.Get("subtype"), what + ".subtype");
  if (options.fsname.empty()) throw Napi::TypeError::New(value.Env(), what + ".fsname must not be empty");
  auto allowed = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; };
  if (options.subtype.empty() || !std::all_of(options.subtype.begin(), options.subtype.end(), allowed)) {
    throw Napi::TypeError::New(value.Env(), what + ".subtype must be letters, digits, '.', '_' or '-'");
  }
  options.readonly = ToOptionalBool(object, "readonly", what);
  options.allowOther = ToOptionalBool(object, "allowOther", what);
  options.defaultPermissions = ToOptionalBool(object, "defaultPermissions", what);
  options.writebackCache = ToOptionalBool(object, "writebackCache", what);
  Napi::Value maxWrite = object.Get("maxWrite");
  if (!maxWrite.IsUndefined()) {
    uint64_t bytes = ToUnsigned(maxWrite, what + ".maxWrite", kMaxBytes);
    if (bytes < kMinMaxWrite) throw Napi::TypeError::New(value.Env(), what + ".maxWrite must be at least 4096");
    options.maxWrite = static_cast<uint32_t>(bytes);
  }
  Napi::Value maxReadahead = object.Get("maxReadahead");
  if (!maxReadahead.IsUndefined()) {
    options.maxReadahead = static_cast<uint32_t>(ToUnsigned(maxReadahead, what + ".maxReadahead", kMaxBytes));
  }
  Napi::Value threads = object.Get("threads");
  if (!threads.IsUndefined()) {
    options.threads = static_cast<unsigned>(ToUnsigned(threads, what + ".threads", kMaxThreads));
    if (options.threads == 0) throw Napi::TypeError::New(value.Env(), what + ".threads must be at least 1");
  }
  options.eventLoop = ToOptionalBool(object, "eventLoop", what);
  if (options.eventLoop && !Session::CanReadOnEventLoop()) {
    throw Napi::TypeError::New(value.Env(), what + ".eventLoop: this build cannot read /dev/fuse on the event loop (built without libuv's headers); leave it unset");
  }
  return options;
}

std::string KernelOptions(const MountOptions& options) {
  std::string opts = "fsname=" + EscapeOption(options.fsname) + ",subtype=" + options.subtype;
  if (options.readonly) opts += ",ro";
  if (options.allowOther) opts += ",allow_other";
  if (options.defaultPermissions) opts += ",default_permissions";
  return opts;
}

// Sessions whose threads may be running. process.exit() ends the process
// with exit(3) without tearing the environment down, so neither cleanup
// hooks nor finalizers run; an atexit handler unmounts these instead of
// leaving a dead "Transport endpoint is not connected" mount behind. Leaked
// on purpose so that no static destructor can run before that handler.
std::mutex& LiveMutex() {
  static auto* mutex = new std::mutex;
  return *mutex;
}

// Guarded by LiveMutex().
std::unordered_set<Session*>& Live() {
  static auto* live = new std::unordered_set<Session*>;
  return *live;
}

void Track(Session* session) {
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit(Session::StopAllAtExit); });
  std::lock_guard<std::mutex> lock(LiveMutex());
  Live().insert(session);
}

void Untrack(Session* session) {
  std::lock_guard<std::mutex> lock(LiveMutex());
  Live().erase(session);
}

// Runs `start` with every signal blocked, so that the threads it creates
// inherit a full mask and signals keep going to Node's own threads.
template <typename Start>
void WithSignalsBlocked(Start start) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    start();
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

Napi::Function Session::Define(Napi::Env env) {
  return DefineClass(env, "FuseSession",
                     {
                         InstanceMethod<&Session::Mount>("mount"),
                         InstanceMethod<&Session::Unmount>("unmount"),
                         InstanceAccessor<&Session::Closed>("closed"),
                         InstanceMethod<&Session::ReplyErr>("replyErr"),
                         InstanceMethod<&Session::ReplyNone>("replyNone"),
                         InstanceMethod<&Session::ReplyEntry>("replyEntry"),
                         InstanceMethod<&Session::ReplyCreate>("replyCreate"),
                         InstanceMethod<&Session::ReplyAttr>("replyAttr"),
                         InstanceMethod<&Session::ReplyReadlink>("replyReadlink"),
                         InstanceMethod<&Session::ReplyOpen>("replyOpen"),
                         InstanceMethod<&Session::ReplyWrite>("replyWrite"),
                         InstanceMethod<&Session::ReplyBuf>("replyBuf"),
                         InstanceMethod<&Session::ReplyStatfs>("replyStatfs"),
                         InstanceMethod<&Session::ReplyDirectory>("replyDirectory"),
                         InstanceMethod<&Session::NotifyInvalInode>("notifyInvalInode"),
                         InstanceMethod<&Session::NotifyInvalEntry>("notifyInvalEntry"),
                     });
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  Napi::Env env = info.Env();
  mountpoint_ = ToString(info[0], "FuseSession: mountpoint");
  if (mountpoint_.empty() || mountpoint_[0] != '/') {
    throw Napi::TypeError::New(env, "FuseSession: mountpoint must be an absolute path");
  }
  options_ = ParseOptions(info[1]);
  if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "FuseSession: handler must be a function");
  handler_ = Napi::Persistent(info[2].As<Napi::Function>());
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::Float64Array>().ElementLength() < kSlotCount) {
    throw Napi::TypeError::New(env, "FuseSession: slots must be a Float64Array of " + std::to_string(kSlotCount) + " numbers");
  }
  Napi::Float64Array slots = info[3].As<Napi::Float64Array>();
  slotData_ = slots.Data();
  slots_ = Napi::Persistent(slots);
  closedDeferred_.emplace(Napi::Promise::Deferred::New(env));
  closedPromise_ = Napi::Persistent(closedDeferred_->Promise());
}

Session::~Session() {
  Untrack(this);
  // Only reachable with threads running if the environment is torn down in
  // an order we did not foresee; stopping is still better than a crash.
  StopAndJoin();
  if (wakeRead_ >= 0) close(wakeRead_);
  if (wakeWrite_ >= 0) close(wakeWrite_);
}

Napi::Value Session::Closed(const Napi::CallbackInfo&) { return closedPromise_.Value(); }

Napi::Value Session::Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kIdle) {
    throw Napi::Error::New(env, "mount: this FuseSession was already mounted; create a new one");
  }

  MountpointCheck check = CheckMountpoint(mountpoint_);
  if (!check.error.empty()) throw Napi::Error::New(env, check.error);

  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw Napi::Error::New(env, "pipe2() failed: " + ErrnoText(errno));
  }

  std::string opts = KernelOptions(options_);
  std::vector<std::string> argvStrings = {"tmount", "-o", opts};
  std::vector<char*> argv;
  for (auto& arg : argvStrings) argv.push_back(arg.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, LowlevelOps(), sizeof(fuse_lowlevel_ops), this);
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    close(wake[0]);
    close(wake[1]);
    throw Napi::Error::New(env, "fuse_session_new(-o " + opts + ") failed; libfuse printed why on stderr");
  }

  errno = 0;
  if (fuse_session_mount(se, check.path.c_str()) != 0) {
    int err = errno;
    fuse_session_destroy(se);
    close(wake[0]);
    close(wake[1]);
    throw Napi::Error::New(env, "fuse_session_mount(" + mountpoint_ + ") failed: " +
                                    (err != 0 ? ErrnoText(err) : "libfuse printed why on stderr"));
  }

  // Children spawned by this process must not hold the connection open, and
  // several loop threads poll the same descriptor, so a read must never block.
  int fd = fuse_session_fd(se);
  fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  try {
    tsfn_ = Tsfn::New(env, handler_.Value(), "tmount-fuse", 0, 1, this,
                      [](Napi::Env finalizeEnv, void*, Session* session) { session->OnTsfnFinalized(finalizeEnv); },
                      static_cast<void*>(nullptr));
  } catch (...) {
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    close(wake[0]);
    close(wake[1]);
    throw;
  }
  if (options_.eventLoop) inlineHandler_ = Napi::Persistent(handler_.Value());
  handler_.Reset();

  wakeRead_ = wake[0];
  wakeWrite_ = wake[1];
  {
    std::lock_guard<std::mutex> life(lifeMutex_);
    se_ = se;
  }
  // Registered after the TSFN so that, at environment teardown, it runs
  // before the TSFN's own hook finalizes the TSFN.
  cleanupHook_ = env.AddCleanupHook(&Session::OnEnvCleanup, this);
  cleanupHookActive_ = true;
  Ref();
  state_ = State::kMounted;

  try {
    WithSignalsBlocked([this] { supervisor_ = std::thread(&Session::Supervise, this); });
  } catch (const std::system_error& error) {
    // No thread will ever tear down: do it here, the finalizer settles the rest.
    state_ = State::kClosing;
    {
      std::lock_guard<std::mutex> life(lifeMutex_);
      fuse_session_unmount(se_);
      fuse_session_destroy(se_);
      se_ = nullptr;
      ended_ = true;
    }
    tsfn_.Release();
    throw Napi::Error::New(env, std::string("could not start the FUSE thread: ") + error.what());
  }
  Track(this);
  if (options_.eventLoop) {
    try {
      StartReading(env);
    } catch (...) {
      // The supervisor unmounts and the finalizer settles the rest, as for unmount().
      state_ = State::kClosing;
      Wake();
      throw;
    }
  }
  return env.Undefined();
}

Napi::Value Session::Unmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  if (state_ == State::kIdle || state_ == State::kClosed) {
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  if (state_ == State::kMounted) {
    state_ = State::kClosing;
    StopReading();
    Wake();
  }
  unmountWaiters_.push_back(deferred);
  return deferred.Promise();
}

// Notifications write to /dev/fuse and the kernel may wait inside the write,
// e.g. for a page lock held by a read that is itself waiting for JS. So they
// must not be sent for an inode while JS still owes the kernel a reply to a
// request on that same inode (or entry); they are synchronous because the
// contract returns void, and they are never sent from a loop thread.
Napi::Value Session::NotifyInvalInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t ino = ToUnsigned(info[0], "notifyInvalInode: ino");
  int64_t offset = ToSigned(info[1], "notifyInvalInode: offset");
  int64_t length = ToSigned(info[2], "notifyInvalInode: length");
  if (state_ == State::kIdle) throw Napi::Error::New(env, "notifyInvalInode: the session is not mounted");
  std::lock_guard<std::mutex> life(lifeMutex_);
  if (se_ == nullptr) return env.Undefined();
  int res = fuse_lowlevel_notify_inval_inode(se_, ino, offset, length);
  // ENOENT: the kernel has no such inode cached, so nothing is stale.
  // ENOTCONN/ENODEV/EBADF: the connection is going away, and its cache with it.
  if (res == 0 || res == -ENOENT || res == -ENOTCONN || res == -ENODEV || res == -EBADF) return env.Undefined();
  throw Napi::Error::New(env, "fuse_lowlevel_notify_inval_inode(" + std::to_string(ino) + ") failed: " +
                                  ErrnoText(-res));
}

Napi::Value Session::NotifyInvalEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t parent = ToUnsigned(info[0], "notifyInvalEntry: parent");
  std::string name = ToName(info[1], "notifyInvalEntry: name");
  if (state_ == State::kIdle) throw Napi::Error::New(env, "notifyInvalEntry: the session is not mounted");
  std::lock_guard<std::mutex> life(lifeMutex_);
  if (se_ == nullptr) return env.Undefined();
  int res = fuse_lowlevel_notify_inval_entry(se_, parent, name.c_str(), name.size());
  if (res == 0 || res == -ENOENT || res == -ENOTCONN || res == -ENODEV || res == -EBADF) return env.Undefined();
  throw Napi::Error::New(env, "fuse_lowlevel_notify_inval_entry(" + std::to_string(parent) + ", " + name +
                                  ") failed: " + ErrnoText(-res));
}

void Session::Negotiate(fuse_conn_info* conn) {
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_PARALLEL_DIROPS);
#ifdef FUSE_CAP_NO_OPENDIR_SUPPORT  // libfuse 3.5+
  kernelOpensDirs_.store((conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0, std::memory_order_relaxed);
#endif
  // Always readdirplus, never the kernel's adaptive choice: an SFTP READDIR
  // returns every name's attributes anyway, so plus costs no extra round trip
  // and saves one LOOKUP per entry on `ls -l`, `find`, `git status`.
  want(FUSE_CAP_READDIRPLUS);
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_READDIRPLUS_AUTO);
  if (options_.writebackCache) {
    want(FUSE_CAP_WRITEBACK_CACHE);
  } else {
    conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
  }
#ifdef FUSE_CAP_BIG_WRITES
  want(FUSE_CAP_BIG_WRITES);
#endif
  // libfuse lowers this to its buffer size and derives max_pages from it,
  // which also lets reads grow to the same size.
  conn->max_write = options_.maxWrite;
  if (options_.maxReadahead != 0) conn->max_readahead = std::min(conn->max_readahead, options_.maxReadahead);
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kCongestionThreshold;
}

void Session::Submit(fuse_req_t req, std::unique_ptr<Request> request) {
  Pending pending{req, request->op, request->size, request->plus};
  {
    std::lock_guard<std::mutex> table(tableMutex_);
    request->id = nextId_++;
    pending_.emplace(request->id, pending);
  }
  uint64_t id = request->id;
  if (HandToJs(request)) return;
  // The TSFN is closing (environment teardown): nobody will answer.
  bool mine;
  {
    std::lock_guard<std::mutex> table(tableMutex_);
    mine = pending_.erase(id) == 1;
  }
  if (mine) fuse_reply_err(req, EIO);
}

void Session::SubmitForget(std::unique_ptr<Request> request) { HandToJs(request); }

// In event-loop mode this runs on the JS thread, which calls JS at once;
// otherwise the TSFN queues the request for it. False (the request stays
// here) only when the TSFN is closing.
bool Session::HandToJs(std::unique_ptr<Request>& request) {
  if (options_.eventLoop) {
    CallJs(inlineHandler_.Env(), inlineHandler_.Value(), this, request.release());
    return true;
  }
  if (tsfn_.NonBlockingCall(request.get()) != napi_ok) return false;
  request.release();
  return true;
}

void Session::CallJs(Napi::Env env, Napi::Function handler, Session* session, Request* raw) {
  std::unique_ptr<Request> request(raw);
  // A null env means the TSFN is being torn down with items still queued.
  if (env == nullptr || session == nullptr || request == nullptr) return;
  if (request->op == Op::kForget ? session->ended_.load() : !session->IsPending(request->id)) return;
  uint64_t id = request->id;
  try {
    CallHandler(env, handler, session->slotData_, *request);
  } catch (const Napi::Error& error) {
    // A throwing handler is a bug in the adapter; the kernel must still get
    // an answer. Rethrowing from a TSFN callback would only print a
    // deprecation warning (DEP0168), so raise 'uncaughtException' directly.
    if (request->op != Op::kForget) session->AnswerAfterHandlerThrew(id);
    napi_fatal_exception(env, error.Value());
  }
}

bool Session::IsPending(uint64_t id) {
  std::lock_guard<std::mutex> table(tableMutex_);
  return pending_.count(id) == 1;
}

void Session::AnswerAfterHandlerThrew(uint64_t id) {
  std::lock_guard<std::mutex> life(lifeMutex_);
  if (se_ == nullptr) return;
  fuse_req_t req = nullptr;
  {
    std::lock_guard<std::mutex> table(tableMutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    req = it->second.req;
    pending_.erase(it);
  }
  fuse_reply_err(req, EIO);
}

void Session::Wake() {
  if (wakeWrite_ < 0) return;
  char byte = 1;
  // A full pipe is as good as a written one: it is readable either way.
  ssize_t written = write(wakeWrite_, &byte, 1);
  (void)written;
}

void Session::Loop() {
  fuse_buf buf;
  std::memset(&buf, 0, sizeof buf);
  pollfd fds[2];
  fds[0] = {fuse_session_fd(se_), POLLIN, 0};
  fds[1] = {wakeRead_, POLLIN, 0};
  while (!fuse_session_exited(se_)) {
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;
    // Another loop thread may have taken the request: EAGAIN, poll again.
    // An unmount or an aborted connection reads as ENODEV, which returns 0.
    int res = fuse_session_receive_buf(se_, &buf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break;
    fuse_session_process_buf(se_, &buf);
  }
  std::free(buf.mem);
  Wake();
}

void Session::Supervise() {
  if (options_.eventLoop) {
    // The JS thread reads; it (or a teardown) writes the wake pipe when the loop must end.
    pollfd wake{wakeRead_, POLLIN, 0};
    while (poll(&wake, 1, -1) < 0 && errno == EINTR) {
    }
  } else {
    std::vector<std::thread> loops;
    try {
      for (unsigned i = 0; i < options_.threads; ++i) loops.emplace_back(&Session::Loop, this);
    } catch (const std::system_error&) {
      // Fewer loop threads than asked still serve the mount; none ends it.
    }
    for (auto& loop : loops) loop.join();
  }

  fuse_session* se;
  {
    std::lock_guard<std::mutex> life(lifeMutex_);
    // Exited first, so that replies to a closed descriptor stay quiet.
    fuse_session_exit(se_);
    std::unordered_map<uint64_t, Pending> orphans;
    {
      std::lock_guard<std::mutex> table(tableMutex_);
      orphans.swap(pending_);
    }
    // libfuse frees each request when it is answered, and fuse_session_destroy
    // frees the session they point to: every one must be answered before.
    for (auto& [id, pending] : orphans) fuse_reply_err(pending.req, EIO);
    // From here on nothing else touches the session (replies see ended_,
    // notifications see no se_), so the slow part runs without the lock and
    // a reply on the JS thread never waits for fusermount3.
    se = se_;
    se_ = nullptr;
    ended_ = true;
  }
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  tsfn_.Release();
}

void Session::StopAndJoin() {
  Wake();
  if (supervisor_.joinable()) supervisor_.join();
}

void Session::OnEnvCleanup(Session* session) {
  session->cleanupHookActive_ = false;
  session->envTearingDown_ = true;
  session->StopReading();
  session->StopAndJoin();
  Untrack(session);
}

// Runs inside exit(3), on the thread that called it: in Node, the JS thread
// (process.exit), which therefore holds neither lock nor runs JS meanwhile.
void Session::StopAllAtExit() {
  std::vector<Session*> sessions;
  {
    std::lock_guard<std::mutex> lock(LiveMutex());
    sessions.assign(Live().begin(), Live().end());
    Live().clear();
  }
  for (Session* session : sessions) session->StopAndJoin();
}

void Session::OnTsfnFinalized(Napi::Env env) {
  Untrack(this);
  // The supervisor released the TSFN as its last act, so this join is short.
  if (supervisor_.joinable()) supervisor_.join();
  if (wakeRead_ >= 0) close(wakeRead_);
  if (wakeWrite_ >= 0) close(wakeWrite_);
  wakeRead_ = wakeWrite_ = -1;
  state_ = State::kClosed;
  StopReading();
  std::free(inlineBuf_.mem);
  inlineBuf_.mem = nullptr;
  if (envTearingDown_) {
    // Its destructor would emit an async-hooks event into an environment that is going away.
    (void)asyncContext_.release();
    return;
  }
  asyncContext_.reset();
  inlineHandler_.Reset();
  if (cleanupHookActive_) {
    cleanupHook_.Remove(env);
    cleanupHookActive_ = false;
  }
  Napi::HandleScope scope(env);
  if (closedDeferred_) closedDeferred_->Resolve(env.Undefined());
  for (auto& waiter : unmountWaiters_) waiter.Resolve(env.Undefined());
  unmountWaiters_.clear();
  Unref();
}

}  // namespace tmount
