// RpcServer: the daemon's request/reply endpoint (DESIGN.md section 6). A ROUTER socket takes
// requests; a pool of workers runs them through the RequestHandler; each answer goes back to
// the peer that asked. Malformed frames get BadRequest and the server goes on serving.
//
// One frontend thread owns the ROUTER socket. It hands each request — its routing envelope,
// the sender's role (CURVE User-Id, or admin without CURVE) and the body frame — to the workers
// over an inproc DEALER, and sends their answers back. A request is a single body frame after
// the envelope: DEALER clients send [body], REQ clients [empty, body]; both work.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport/curve.h"
#include "transport/handler.h"

namespace shardledger {

struct RpcServerOptions {
  std::string endpoint = "tcp://127.0.0.1:7400";  // "tcp://127.0.0.1:*" picks a free port
  int workers = 4;
  // CURVE: when set, clients must use CURVE with a key from `allow`.
  std::optional<CurveKeyPair> curve_server_keys;
  AllowList allow;
  HandlerOptions handler;
};

class RpcServer {
 public:
  static Result<std::unique_ptr<RpcServer>> Start(Ledger& ledger, RpcServerOptions options);
  ~RpcServer();  // stops taking requests, lets the workers finish theirs

  const std::string& endpoint() const { return endpoint_; }
  uint64_t requests() const { return requests_.load(); }

 private:
  RpcServer(Ledger& ledger, RpcServerOptions options);
  void Frontend();
  void Worker();

  RpcServerOptions options_;
  RequestHandler handler_;
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t router_;
  zmq::socket_t backend_;
  std::string backend_endpoint_;
  std::string endpoint_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
  std::thread frontend_;
  std::vector<std::thread> workers_;
};

}  // namespace shardledger
