#include "connection.h"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "placeholders.h"

namespace tmount {

// cfapi's CF_CALLBACK_DELETE_FLAG_IS_UNDELETE, missing from older SDKs: a
// delete announced before is being taken back.
static constexpr DWORD kDeleteFlagIsUndelete = 0x00000002;

// A request on its way to JS: what the callback said, in owned memory.
struct JsRequest {
  const char* op = "";
  uint32_t id = 0;
  std::wstring volume;
  std::wstring path;
  std::wstring target;
  std::wstring pattern;
  std::string transferKey;
  int64_t fileSize = 0;
  int64_t requiredOffset = 0;
  int64_t requiredLength = 0;
  int64_t optionalOffset = 0;
  int64_t optionalLength = 0;
  int64_t offset = 0;
  int64_t length = 0;
  bool isDirectory = false;
  bool undelete = false;
  bool sourceInScope = false;
  bool targetInScope = false;
  bool deleted = false;
  bool explicitHydration = false;
  bool hasProcess = false;
  DWORD pid = 0;
  std::wstring image;
  // Keeps the connection alive until JS got the request.
  std::shared_ptr<Connection> connection;

  // JS thread. The shape of CfRequest in addon-types.ts.
  Napi::Object ToJs(Napi::Env env) const {
    Napi::Object request = Napi::Object::New(env);
    auto number = [&](const char* name, int64_t value) { request.Set(name, Napi::Number::New(env, static_cast<double>(value))); };
    auto flag = [&](const char* name, bool value) { request.Set(name, Napi::Boolean::New(env, value)); };
    request.Set("op", Napi::String::New(env, op));
    number("id", id);
    request.Set("volume", Napi::String::New(env, Utf8(volume)));
    request.Set("path", Napi::String::New(env, Utf8(path)));
    if (hasProcess) {
      Napi::Object process = Napi::Object::New(env);
      process.Set("pid", Napi::Number::New(env, pid));
      process.Set("image", Napi::String::New(env, Utf8(image)));
      request.Set("process", process);
    }
    const std::string kind = op;
    if (kind == "fetchPlaceholders") {
      request.Set("pattern", Napi::String::New(env, Utf8(pattern)));
    } else if (kind == "fetchData") {
      request.Set("transferKey", Napi::String::New(env, transferKey));
      number("fileSize", fileSize);
      number("requiredOffset", requiredOffset);
      number("requiredLength", requiredLength);
      number("optionalOffset", optionalOffset);
      number("optionalLength", optionalLength);
      flag("explicit", explicitHydration);
    } else if (kind == "cancelFetchData") {
      request.Set("transferKey", Napi::String::New(env, transferKey));
      number("offset", offset);
      number("length", length);
    } else if (kind == "notifyDelete") {
      flag("isDirectory", isDirectory);
      flag("undelete", undelete);
    } else if (kind == "notifyRename") {
      request.Set("target", Napi::String::New(env, Utf8(target)));
      flag("isDirectory", isDirectory);
      flag("sourceInScope", sourceInScope);
      flag("targetInScope", targetInScope);
    } else if (kind == "notifyFileClose") {
      flag("deleted", deleted);
    }
    return request;
  }
};

namespace {

Connection* Self(const CF_CALLBACK_INFO* info) {
  return static_cast<Connection*>(const_cast<void*>(info->CallbackContext));
}

std::unique_ptr<JsRequest> Common(const CF_CALLBACK_INFO* info, const char* op) {
  auto request = std::make_unique<JsRequest>();
  request->op = op;
  request->volume = info->VolumeDosName != nullptr ? info->VolumeDosName : L"";
  request->path = info->NormalizedPath != nullptr ? info->NormalizedPath : L"";
  request->transferKey = std::to_string(info->TransferKey.QuadPart);
  request->fileSize = info->FileSize.QuadPart;
  if (info->ProcessInfo != nullptr) {
    request->hasProcess = true;
    request->pid = info->ProcessInfo->ProcessId;
    request->image = info->ProcessInfo->ImagePath != nullptr ? info->ProcessInfo->ImagePath : L"";
  }
  return request;
}

Pending PendingFrom(const CF_CALLBACK_INFO* info, RequestKind kind) {
  Pending pending{};
  pending.kind = kind;
  pending.connectionKey = info->ConnectionKey;
  pending.transferKey = info->TransferKey;
  // RequestKey came with Windows 10 2004; an older platform hands a shorter struct.
  if (info->StructSize >= FIELD_OFFSET(CF_CALLBACK_INFO, RequestKey) + sizeof(info->RequestKey)) pending.requestKey = info->RequestKey;
  if (info->CorrelationVector != nullptr) {
    pending.correlation = *info->CorrelationVector;
    pending.hasCorrelation = true;
  }
  return pending;
}

// cfapi runs the callbacks; nothing may escape them. A request that cannot
// even be copied is failed on the spot.
template <typename Body>
void Guarded(const CF_CALLBACK_INFO* info, RequestKind kind, bool needsAnswer, Body&& body) {
  try {
    body();
  } catch (...) {
    if (needsAnswer) Connection::Complete(PendingFrom(info, kind), STATUS_CLOUD_FILE_UNSUCCESSFUL);
  }
}

const char* OperationName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kFetchData:
      return "CfExecute(TRANSFER_DATA)";
    case RequestKind::kFetchPlaceholders:
      return "CfExecute(TRANSFER_PLACEHOLDERS)";
    case RequestKind::kNotifyDelete:
      return "CfExecute(ACK_DELETE)";
    case RequestKind::kNotifyRename:
      return "CfExecute(ACK_RENAME)";
  }
  return "CfExecute";
}

Napi::Promise Resolved(Napi::Env env, Napi::Value value) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  deferred.Resolve(value);
  return deferred.Promise();
}

}  // namespace

Connection::Connection(std::wstring root, std::chrono::milliseconds timeout) : root_(std::move(root)), timeout_(timeout) {}

Connection::~Connection() {
  try {
    Disconnect();
  } catch (...) {
    // Nothing to report to at this point; the process keeps running.
  }
  if (watchdog_.joinable()) watchdog_.join();
}

void Connection::Connect(Napi::Env env, Napi::Function handler) {
  static const CF_CALLBACK_REGISTRATION kCallbacks[] = {
      {CF_CALLBACK_TYPE_FETCH_PLACEHOLDERS, &Connection::OnFetchPlaceholders},
      {CF_CALLBACK_TYPE_FETCH_DATA, &Connection::OnFetchData},
      {CF_CALLBACK_TYPE_CANCEL_FETCH_DATA, &Connection::OnCancelFetchData},
      {CF_CALLBACK_TYPE_NOTIFY_DELETE, &Connection::OnNotifyDelete},
      {CF_CALLBACK_TYPE_NOTIFY_RENAME, &Connection::OnNotifyRename},
      {CF_CALLBACK_TYPE_NOTIFY_FILE_CLOSE_COMPLETION, &Connection::OnNotifyFileCloseCompletion},
      CF_CALLBACK_REGISTRATION_END,
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (connected_ || closing_) ThrowCall("CfConnectSyncRoot (already connected or closed)", HRESULT_FROM_WIN32(ERROR_INVALID_STATE));
    // Unlimited queue: a callback thread never waits for JS.
    tsfn_ = Napi::ThreadSafeFunction::New(env, handler, "tmount:cloud-files", 0, 1);
    tsfnLive_ = true;
  }
  HRESULT hr = CfConnectSyncRoot(root_.c_str(), kCallbacks, this,
                                 CF_CONNECT_FLAG_REQUIRE_PROCESS_INFO | CF_CONNECT_FLAG_REQUIRE_FULL_FILE_PATH, &key_);
  if (FAILED(hr)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tsfnLive_ = false;
      tsfn_.Release();
    }
    ThrowCall("CfConnectSyncRoot(" + Utf8(root_) + ")", hr);
  }
  connected_ = true;
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

void Connection::Disconnect() {
  std::vector<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;
    closing_ = true;
    for (const auto& entry : pending_) left.push_back(entry.second);
    pending_.clear();
  }
  // Answered while the connection key still means something.
  for (const Pending& pending : left) Complete(pending, STATUS_CLOUD_FILE_PROVIDER_TERMINATED);
  HRESULT hr = connected_ ? CfDisconnectSyncRoot(key_) : S_OK;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopWatchdog_ = true;
    if (tsfnLive_) {
      tsfnLive_ = false;
      tsfn_.Release();
    }
  }
  wake_.notify_all();
  if (watchdog_.joinable() && watchdog_.get_id() != std::this_thread::get_id()) watchdog_.join();
  connected_ = false;
  Check("CfDisconnectSyncRoot", hr);
}

bool Connection::Begin(uint32_t id, Pending* copy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = pending_.find(id);
  if (found == pending_.end()) return false;
  found->second.busy++;
  *copy = found->second;
  return true;
}

void Connection::End(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = pending_.find(id);
  if (found == pending_.end()) return;
  if (found->second.busy > 0) found->second.busy--;
  found->second.deadline = std::chrono::steady_clock::now() + timeout_;
}

bool Connection::Take(uint32_t id, Pending* copy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = pending_.find(id);
  if (found == pending_.end()) return false;
  if (copy != nullptr) *copy = found->second;
  pending_.erase(found);
  return true;
}

bool Connection::Touch(uint32_t id, Pending* copy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = pending_.find(id);
  if (found == pending_.end()) return false;
  found->second.deadline = std::chrono::steady_clock::now() + timeout_;
  *copy = found->second;
  return true;
}

size_t Connection::PendingCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

CF_OPERATION_INFO Connection::OperationInfo(const Pending& pending, CF_OPERATION_TYPE type) {
  CF_OPERATION_INFO operation;
  ZeroMemory(&operation, sizeof(operation));
  operation.StructSize = sizeof(operation);
  operation.Type = type;
  operation.ConnectionKey = pending.connectionKey;
  operation.TransferKey = pending.transferKey;
  operation.CorrelationVector = pending.hasCorrelation ? &pending.correlation : nullptr;
  operation.RequestKey = pending.requestKey;
  return operation;
}

HRESULT Connection::Complete(const Pending& pending, NTSTATUS status) {
  CF_OPERATION_PARAMETERS params;
  ZeroMemory(&params, sizeof(params));
  CF_OPERATION_TYPE type = CF_OPERATION_TYPE_TRANSFER_DATA;
  switch (pending.kind) {
    case RequestKind::kFetchData:
      // A successful fetch was answered by its TRANSFER_DATA calls already.
      if (status == STATUS_SUCCESS) return S_OK;
      type = CF_OPERATION_TYPE_TRANSFER_DATA;
      params.ParamSize = CF_SIZE_OF_OP_PARAM(TransferData);
      params.TransferData.Flags = CF_OPERATION_TRANSFER_DATA_FLAG_NONE;
      params.TransferData.CompletionStatus = status;
      params.TransferData.Buffer = nullptr;
      params.TransferData.Offset = Large(pending.requiredOffset);
      params.TransferData.Length = Large(pending.requiredLength);
      break;
    case RequestKind::kFetchPlaceholders:
      type = CF_OPERATION_TYPE_TRANSFER_PLACEHOLDERS;
      params.ParamSize = CF_SIZE_OF_OP_PARAM(TransferPlaceholders);
      params.TransferPlaceholders.Flags = CF_OPERATION_TRANSFER_PLACEHOLDERS_FLAG_NONE;
      params.TransferPlaceholders.CompletionStatus = status;
      params.TransferPlaceholders.PlaceholderTotalCount = Large(0);
      params.TransferPlaceholders.PlaceholderArray = nullptr;
      params.TransferPlaceholders.PlaceholderCount = 0;
      break;
    case RequestKind::kNotifyDelete:
      type = CF_OPERATION_TYPE_ACK_DELETE;
      params.ParamSize = CF_SIZE_OF_OP_PARAM(AckDelete);
      params.AckDelete.Flags = CF_OPERATION_ACK_DELETE_FLAG_NONE;
      params.AckDelete.CompletionStatus = status;
      break;
    case RequestKind::kNotifyRename:
      type = CF_OPERATION_TYPE_ACK_RENAME;
      params.ParamSize = CF_SIZE_OF_OP_PARAM(AckRename);
      params.AckRename.Flags = CF_OPERATION_ACK_RENAME_FLAG_NONE;
      params.AckRename.CompletionStatus = status;
      break;
  }
  CF_OPERATION_INFO operation = OperationInfo(pending, type);
  return CfExecute(&operation, &params);
}

void Connection::Deliver(std::unique_ptr<JsRequest> request, const Pending* pending) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closing_ || !tsfnLive_) {
    lock.unlock();
    if (pending != nullptr) Complete(*pending, STATUS_CLOUD_FILE_PROVIDER_TERMINATED);
    return;
  }
  // Held until this function returns, so nothing below can end the connection's life.
  std::shared_ptr<Connection> self = shared_from_this();
  uint32_t id = 0;
  if (pending != nullptr) {
    id = nextId_++;
    if (nextId_ == 0) nextId_ = 1;
    Pending entry = *pending;
    entry.deadline = std::chrono::steady_clock::now() + timeout_;
    pending_.emplace(id, entry);
  }
  request->id = id;
  request->connection = self;
  JsRequest* raw = request.release();
  if (tsfn_.NonBlockingCall(raw, &Connection::CallJs) == napi_ok) return;
  // The JS side is going away: nobody will answer.
  Pending taken{};
  bool found = false;
  if (id != 0) {
    auto entry = pending_.find(id);
    if (entry != pending_.end()) {
      taken = entry->second;
      pending_.erase(entry);
      found = true;
    }
  }
  lock.unlock();
  delete raw;
  if (found) Complete(taken, STATUS_CLOUD_FILE_PROVIDER_TERMINATED);
}

void Connection::CallJs(Napi::Env env, Napi::Function handler, JsRequest* raw) {
  std::unique_ptr<JsRequest> request(raw);
  try {
    handler.Call({request->ToJs(env)});
  } catch (const Napi::Error& error) {
    // The handler is not supposed to throw (the driver catches everything);
    // if it does, the request must still end now rather than at the deadline.
    std::fprintf(stderr, "tmount: the Cloud Files request handler threw: %s\n", error.Message().c_str());
    if (request->id != 0) request->connection->FailNow(request->id);
  }
}

void Connection::FailNow(uint32_t id) {
  Pending pending{};
  if (Take(id, &pending)) Complete(pending, STATUS_CLOUD_FILE_UNSUCCESSFUL);
}

void Connection::WatchdogLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopWatchdog_) {
    const auto now = std::chrono::steady_clock::now();
    // At most a second between looks; a busy request is looked at again once its answer ends.
    auto wakeAt = now + std::chrono::seconds(1);
    std::vector<Pending> expired;
    for (auto entry = pending_.begin(); entry != pending_.end();) {
      if (entry->second.busy == 0 && entry->second.deadline <= now) {
        expired.push_back(entry->second);
        entry = pending_.erase(entry);
        continue;
      }
      if (entry->second.busy == 0 && entry->second.deadline < wakeAt) wakeAt = entry->second.deadline;
      ++entry;
    }
    if (!expired.empty()) {
      lock.unlock();
      for (const Pending& pending : expired) Complete(pending, STATUS_CLOUD_FILE_REQUEST_TIMEOUT);
      lock.lock();
      continue;
    }
    wake_.wait_until(lock, wakeAt);
  }
}

void CALLBACK Connection::OnFetchPlaceholders(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kFetchPlaceholders, true, [&] {
    auto request = Common(info, "fetchPlaceholders");
    request->pattern = params->FetchPlaceholders.Pattern != nullptr ? params->FetchPlaceholders.Pattern : L"*";
    Pending pending = PendingFrom(info, RequestKind::kFetchPlaceholders);
    Self(info)->Deliver(std::move(request), &pending);
  });
}

void CALLBACK Connection::OnFetchData(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kFetchData, true, [&] {
    auto request = Common(info, "fetchData");
    request->requiredOffset = params->FetchData.RequiredFileOffset.QuadPart;
    request->requiredLength = params->FetchData.RequiredLength.QuadPart;
    request->optionalOffset = params->FetchData.OptionalFileOffset.QuadPart;
    request->optionalLength = params->FetchData.OptionalLength.QuadPart;
    request->explicitHydration = (params->FetchData.Flags & CF_CALLBACK_FETCH_DATA_FLAG_EXPLICIT_HYDRATION) != 0;
    Pending pending = PendingFrom(info, RequestKind::kFetchData);
    pending.requiredOffset = request->requiredOffset;
    // A failure names a concrete range; CF_EOF (-1) means up to the end.
    pending.requiredLength = request->requiredLength >= 0 ? request->requiredLength : request->fileSize - request->requiredOffset;
    Self(info)->Deliver(std::move(request), &pending);
  });
}

void CALLBACK Connection::OnCancelFetchData(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kFetchData, false, [&] {
    auto request = Common(info, "cancelFetchData");
    request->offset = params->Cancel.FetchData.FileOffset.QuadPart;
    request->length = params->Cancel.FetchData.Length.QuadPart;
    Self(info)->Deliver(std::move(request), nullptr);
  });
}

void CALLBACK Connection::OnNotifyDelete(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kNotifyDelete, true, [&] {
    auto request = Common(info, "notifyDelete");
    request->isDirectory = (params->Delete.Flags & CF_CALLBACK_DELETE_FLAG_IS_DIRECTORY) != 0;
    request->undelete = (static_cast<DWORD>(params->Delete.Flags) & kDeleteFlagIsUndelete) != 0;
    Pending pending = PendingFrom(info, RequestKind::kNotifyDelete);
    Self(info)->Deliver(std::move(request), &pending);
  });
}

void CALLBACK Connection::OnNotifyRename(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kNotifyRename, true, [&] {
    auto request = Common(info, "notifyRename");
    request->target = params->Rename.TargetPath != nullptr ? params->Rename.TargetPath : L"";
    request->isDirectory = (params->Rename.Flags & CF_CALLBACK_RENAME_FLAG_IS_DIRECTORY) != 0;
    request->sourceInScope = (params->Rename.Flags & CF_CALLBACK_RENAME_FLAG_SOURCE_IN_SCOPE) != 0;
    request->targetInScope = (params->Rename.Flags & CF_CALLBACK_RENAME_FLAG_TARGET_IN_SCOPE) != 0;
    Pending pending = PendingFrom(info, RequestKind::kNotifyRename);
    Self(info)->Deliver(std::move(request), &pending);
  });
}

void CALLBACK Connection::OnNotifyFileCloseCompletion(const CF_CALLBACK_INFO* info, const CF_CALLBACK_PARAMETERS* params) {
  Guarded(info, RequestKind::kNotifyDelete, false, [&] {
    auto request = Common(info, "notifyFileClose");
    request->deleted = (params->CloseCompletion.Flags & CF_CALLBACK_CLOSE_COMPLETION_FLAG_DELETED) != 0;
    Self(info)->Deliver(std::move(request), nullptr);
  });
}

Napi::Function SyncRootConnection::Define(Napi::Env env) {
  return DefineClass(env, "SyncRootConnection",
                     {
                         InstanceMethod("connect", &SyncRootConnection::Connect),
                         InstanceMethod("disconnect", &SyncRootConnection::Disconnect),
                         InstanceMethod("transferData", &SyncRootConnection::TransferData),
                         InstanceMethod("transferPlaceholders", &SyncRootConnection::TransferPlaceholders),
                         InstanceMethod("complete", &SyncRootConnection::Complete),
                         InstanceMethod("forget", &SyncRootConnection::Forget),
                         InstanceMethod("reportProgress", &SyncRootConnection::ReportProgress),
                         InstanceAccessor("pending", &SyncRootConnection::PendingGetter, nullptr),
                     });
}

SyncRootConnection::SyncRootConnection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SyncRootConnection>(info) {
  Napi::Env env = info.Env();
  std::wstring root = PathArg(info, 0, "path");
  if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "handler must be a function");
  handler_ = Napi::Persistent(info[1].As<Napi::Function>());
  int64_t timeoutMs = 50000;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value value = info[2].As<Napi::Object>().Get("requestTimeoutMs");
    if (value.IsNumber()) timeoutMs = value.As<Napi::Number>().Int64Value();
  }
  if (timeoutMs < 1000) timeoutMs = 1000;
  connection_ = std::make_shared<Connection>(std::move(root), std::chrono::milliseconds(timeoutMs));
}

SyncRootConnection::~SyncRootConnection() {
  // Collected while connected: end the connection here, on the JS thread,
  // rather than wherever the last reference to it happens to go.
  try {
    if (connection_) connection_->Disconnect();
  } catch (...) {
  }
}

Napi::Value SyncRootConnection::Connect(const Napi::CallbackInfo& info) {
  try {
    connection_->Connect(info.Env(), handler_.Value());
  } catch (const CallError& error) {
    throw ToJsError(info.Env(), error);
  }
  return info.Env().Undefined();
}

Napi::Value SyncRootConnection::Disconnect(const Napi::CallbackInfo& info) {
  std::shared_ptr<Connection> connection = connection_;
  return RunTask(
      info.Env(), "tmount:disconnect", [connection] { connection->Disconnect(); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value SyncRootConnection::TransferData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = IdArg(info, 0);
  int64_t offset = IntegerOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "offset");
  if (info.Length() < 3 || !info[2].IsBuffer()) throw Napi::TypeError::New(env, "data must be a Buffer");
  Napi::Buffer<uint8_t> buffer = info[2].As<Napi::Buffer<uint8_t>>();
  // A copy: the JS buffer may move or be reused while the pool thread works.
  auto data = std::make_shared<std::vector<uint8_t>>(buffer.Data(), buffer.Data() + buffer.Length());
  Pending pending{};
  if (!connection_->Begin(id, &pending)) return Resolved(env, Napi::Boolean::New(env, false));
  std::shared_ptr<Connection> connection = connection_;
  return RunTask(
      env, "tmount:transferData",
      [connection, id, offset, data, pending] {
        CF_OPERATION_PARAMETERS params;
        ZeroMemory(&params, sizeof(params));
        params.ParamSize = CF_SIZE_OF_OP_PARAM(TransferData);
        params.TransferData.Flags = CF_OPERATION_TRANSFER_DATA_FLAG_NONE;
        params.TransferData.CompletionStatus = STATUS_SUCCESS;
        params.TransferData.Buffer = data->data();
        params.TransferData.Offset = Large(offset);
        params.TransferData.Length = Large(static_cast<int64_t>(data->size()));
        CF_OPERATION_INFO operation = Connection::OperationInfo(pending, CF_OPERATION_TYPE_TRANSFER_DATA);
        HRESULT hr = CfExecute(&operation, &params);
        connection->End(id);
        Check("CfExecute(TRANSFER_DATA)", hr);
      },
      [](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, true); });
}

Napi::Value SyncRootConnection::TransferPlaceholders(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = IdArg(info, 0);
  std::shared_ptr<PlaceholderBatch> batch = PlaceholderBatch::FromJs(env, info.Length() > 1 ? info[1] : env.Undefined());
  bool disableOnDemand = info.Length() > 2 && info[2].IsObject() && BoolProperty(info[2].As<Napi::Object>(), "disableOnDemandPopulation", false);
  Pending pending{};
  if (!connection_->Begin(id, &pending)) return Resolved(env, Napi::Boolean::New(env, false));
  std::shared_ptr<Connection> connection = connection_;
  return RunTask(
      env, "tmount:transferPlaceholders",
      [connection, id, batch, disableOnDemand, pending] {
        CF_OPERATION_PARAMETERS params;
        ZeroMemory(&params, sizeof(params));
        params.ParamSize = CF_SIZE_OF_OP_PARAM(TransferPlaceholders);
        params.TransferPlaceholders.Flags =
            disableOnDemand ? CF_OPERATION_TRANSFER_PLACEHOLDERS_FLAG_DISABLE_ON_DEMAND_POPULATION : CF_OPERATION_TRANSFER_PLACEHOLDERS_FLAG_NONE;
        params.TransferPlaceholders.CompletionStatus = STATUS_SUCCESS;
        params.TransferPlaceholders.PlaceholderTotalCount = Large(batch->Count());
        params.TransferPlaceholders.PlaceholderArray = batch->Infos();
        params.TransferPlaceholders.PlaceholderCount = batch->Count();
        params.TransferPlaceholders.EntriesProcessed = 0;
        CF_OPERATION_INFO operation = Connection::OperationInfo(pending, CF_OPERATION_TYPE_TRANSFER_PLACEHOLDERS);
        HRESULT hr = CfExecute(&operation, &params);
        // Names already on disk fail one by one without failing the answer.
        if (SUCCEEDED(hr) || batch->AllPresent()) {
          connection->Take(id, nullptr);
          return;
        }
        connection->End(id);
        ThrowCall("CfExecute(TRANSFER_PLACEHOLDERS)", hr);
      },
      [batch](Napi::Env env) -> Napi::Value { return batch->Results(env); });
}

Napi::Value SyncRootConnection::Complete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = IdArg(info, 0);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "status must be a string");
  NTSTATUS status = StatusFromName(env, info[1].As<Napi::String>().Utf8Value());
  Pending pending{};
  if (!connection_->Take(id, &pending)) return Resolved(env, Napi::Boolean::New(env, false));
  return RunTask(
      env, "tmount:complete", [pending, status] { Check(OperationName(pending.kind), Connection::Complete(pending, status)); },
      [](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, true); });
}

Napi::Value SyncRootConnection::Forget(const Napi::CallbackInfo& info) {
  connection_->Take(IdArg(info, 0), nullptr);
  return info.Env().Undefined();
}

Napi::Value SyncRootConnection::ReportProgress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = IdArg(info, 0);
  int64_t total = IntegerOf(env, info.Length() > 1 ? info[1] : env.Undefined(), "total");
  int64_t completed = IntegerOf(env, info.Length() > 2 ? info[2] : env.Undefined(), "completed");
  Pending pending{};
  // Only Explorer's progress bar depends on it: a failure changes nothing else.
  if (connection_->Touch(id, &pending)) CfReportProviderProgress(pending.connectionKey, pending.transferKey, Large(total), Large(completed));
  return env.Undefined();
}

Napi::Value SyncRootConnection::PendingGetter(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(connection_->PendingCount()));
}

}  // namespace tmount
