#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common.h"

namespace tmount {

enum class RequestKind { kFetchPlaceholders, kFetchData, kNotifyDelete, kNotifyRename };

// A callback JS has not answered yet: what CfExecute needs to answer it,
// copied out of the callback (cfapi's pointers die when it returns).
struct Pending {
  RequestKind kind;
  CF_CONNECTION_KEY connectionKey;
  CF_TRANSFER_KEY transferKey;
  CF_REQUEST_KEY requestKey;
  CORRELATION_VECTOR correlation;
  bool hasCorrelation = false;
  // FETCH_DATA: the range a failure completes.
  int64_t requiredOffset = 0;
  int64_t requiredLength = 0;
  std::chrono::steady_clock::time_point deadline;
  // Answers in flight on the pool; the watchdog leaves a busy request alone.
  int busy = 0;
};

struct JsRequest;

// One connected sync root: the cfapi callbacks, the requests waiting for
// JS, and the watchdog that fails those JS leaves unanswered.
//
// Threads:
//  - cfapi's threads run the On* callbacks: they copy the request, record
//    it as pending and queue it to JS through tsfn_, never waiting for JS;
//  - the JS thread runs CallJs and every SyncRootConnection method;
//  - pool threads (RunTask) run the CfExecute calls those methods make, and
//    Disconnect();
//  - watchdog_ fails requests whose deadline passed.
//
// mu_ guards pending_, nextId_, closing_, stopWatchdog_ and the use of
// tsfn_ from the callback threads. Nobody calls cfapi while holding it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::wstring root, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // JS thread. CfConnectSyncRoot; throws CallError.
  void Connect(Napi::Env env, Napi::Function handler);
  // Any thread but cfapi's. Fails what is pending, CfDisconnectSyncRoot,
  // stops the watchdog and lets go of the JS handler. Idempotent.
  void Disconnect();

  // JS thread: answering. Begin marks a request busy and copies it (false
  // when it is gone); End ends that answer, restarting the deadline; Take
  // removes it for good (false when it was gone).
  bool Begin(uint32_t id, Pending* copy);
  void End(uint32_t id);
  bool Take(uint32_t id, Pending* copy);
  // Restarts a request's deadline and copies it; false when it is gone.
  bool Touch(uint32_t id, Pending* copy);
  size_t PendingCount();

  // Any thread: the CfExecute that completes `pending` with `status` (for
  // a fetch of data, a failure of its required range).
  static HRESULT Complete(const Pending& pending, NTSTATUS status);
  static CF_OPERATION_INFO OperationInfo(const Pending& pending, CF_OPERATION_TYPE type);

  // JS thread: the TSFN callback.
  static void CallJs(Napi::Env env, Napi::Function handler, JsRequest* request);

  // cfapi threads.
  static void CALLBACK OnFetchPlaceholders(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);
  static void CALLBACK OnFetchData(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);
  static void CALLBACK OnCancelFetchData(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);
  static void CALLBACK OnNotifyDelete(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);
  static void CALLBACK OnNotifyRename(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);
  static void CALLBACK OnNotifyFileCloseCompletion(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params);

 private:
  // cfapi thread: records `pending` (when the request needs an answer) and
  // queues the request to JS; fails it at once when JS cannot be reached.
  void Deliver(std::unique_ptr<JsRequest> request, const Pending* pending);
  // JS thread: fails a request JS could not take.
  void FailNow(uint32_t id);
  void WatchdogLoop();

  const std::wstring root_;
  const std::chrono::milliseconds timeout_;
  CF_CONNECTION_KEY key_ = {};
  bool connected_ = false;

  std::mutex mu_;
  std::condition_variable wake_;
  std::unordered_map<uint32_t, Pending> pending_;
  uint32_t nextId_ = 1;
  bool closing_ = false;
  bool stopWatchdog_ = false;
  bool tsfnLive_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::thread watchdog_;
};

// The JS object (SyncRootConnection in addon-types.ts). Owns its
// Connection; every method runs on the JS thread.
class SyncRootConnection : public Napi::ObjectWrap<SyncRootConnection> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SyncRootConnection(const Napi::CallbackInfo& info);
  ~SyncRootConnection() override;

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value TransferData(const Napi::CallbackInfo& info);
  Napi::Value TransferPlaceholders(const Napi::CallbackInfo& info);
  Napi::Value Complete(const Napi::CallbackInfo& info);
  Napi::Value Forget(const Napi::CallbackInfo& info);
  Napi::Value ReportProgress(const Napi::CallbackInfo& info);
  Napi::Value PendingGetter(const Napi::CallbackInfo& info);

  std::shared_ptr<Connection> connection_;
  Napi::FunctionReference handler_;
};

}  // namespace tmount
