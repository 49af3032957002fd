#include "transport/rpc_server.h"

#include <zmq.h>

namespace shardledger {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);

// Receives every part of one message.
std::vector<zmq::message_t> ReceiveAll(zmq::socket_t& socket) {
  std::vector<zmq::message_t> parts;
  do {
    parts.emplace_back();
    if (!socket.recv(parts.back(), zmq::recv_flags::dontwait)) {
      parts.pop_back();
      break;
    }
  } while (parts.back().more());
  return parts;
}

void SendAll(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    socket.send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

}  // namespace

RpcServer::RpcServer(Ledger& ledger, RpcServerOptions options)
    : options_(std::move(options)),
      handler_(ledger, options_.handler),
      context_(1),
      router_(context_, zmq::socket_type::router),
      backend_(context_, zmq::socket_type::dealer) {}

Result<std::unique_ptr<RpcServer>> RpcServer::Start(Ledger& ledger, RpcServerOptions options) {
  if (options.workers < 1) return Status(ErrorCode::kBadRequest, "the RPC server needs at least one worker");
  std::unique_ptr<RpcServer> server(new RpcServer(ledger, std::move(options)));
  static std::atomic<int> counter{0};
  server->backend_endpoint_ = "inproc://shardledger-rpc-workers-" + std::to_string(counter++);
  try {
    if (server->options_.curve_server_keys) {
      SL_ASSIGN_OR_RETURN(server->zap_, ZapHandler::Start(server->context_, server->options_.allow));
      server->router_.set(zmq::sockopt::curve_server, 1);
      server->router_.set(zmq::sockopt::curve_secretkey, server->options_.curve_server_keys->secret_key);
    }
    server->router_.set(zmq::sockopt::linger, 0);
    server->router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxFrameBytes));
    server->router_.bind(server->options_.endpoint);
    server->endpoint_ = server->router_.get(zmq::sockopt::last_endpoint);
    server->backend_.set(zmq::sockopt::linger, 0);
    server->backend_.bind(server->backend_endpoint_);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable,
                  "binding the RPC server to " + server->options_.endpoint + ": " + e.what());
  }
  for (int i = 0; i < server->options_.workers; ++i) {
    server->workers_.emplace_back([raw = server.get()] { raw->Worker(); });
  }
  server->frontend_ = std::thread([raw = server.get()] { raw->Frontend(); });
  return server;
}

RpcServer::~RpcServer() {
  stopping_ = true;
  if (frontend_.joinable()) frontend_.join();
  for (auto& worker : workers_) worker.join();
  zap_.reset();
}

void RpcServer::Frontend() {
  const bool curve = options_.curve_server_keys.has_value();
  while (!stopping_) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {backend_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, kPollInterval);
    if (items[0].revents & ZMQ_POLLIN) {
      // [identity, (envelope...), body] -> [n, identity, (envelope...), role, body]
      std::vector<zmq::message_t> parts = ReceiveAll(router_);
      if (parts.empty()) continue;
      ++requests_;
      Role role = Role::kAdmin;
      if (curve) {
        const char* user = parts.size() > 1 ? zmq_msg_gets(parts.back().handle(), "User-Id") : nullptr;
        role = user ? ParseRole(user).value_or(Role::kReader) : Role::kReader;
      }
      zmq::message_t body;
      if (parts.size() >= 2) {
        body = std::move(parts.back());
        parts.pop_back();
      }
      // Envelopes longer than a byte can count are not ours to answer.
      if (parts.size() > 255) continue;
      std::vector<zmq::message_t> out;
      out.emplace_back(std::string(1, static_cast<char>(parts.size())));
      for (auto& part : parts) out.push_back(std::move(part));
      out.emplace_back(std::string(1, static_cast<char>(role)));
      out.push_back(std::move(body));
      SendAll(backend_, out);
    }
    if (items[1].revents & ZMQ_POLLIN) {
      // [n, identity, (envelope...), response] -> [identity, (envelope...), response]
      std::vector<zmq::message_t> parts = ReceiveAll(backend_);
      if (parts.size() < 3) continue;
      parts.erase(parts.begin());
      // A peer gone meanwhile makes ROUTER drop the answer; nothing else can fail here.
      SendAll(router_, parts);
    }
  }
}

void RpcServer::Worker() {
  zmq::socket_t socket(context_, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(backend_endpoint_);
  while (!stopping_) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollInterval);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> parts = ReceiveAll(socket);
    if (parts.size() < 4) continue;  // the frontend always sends n, identity, role, body
    const size_t envelope = static_cast<uint8_t>(parts[0].to_string_view()[0]);
    if (parts.size() != envelope + 3) continue;
    const auto role_byte = static_cast<uint8_t>(parts[envelope + 1].to_string_view().empty()
                                                    ? 0
                                                    : parts[envelope + 1].to_string_view()[0]);
    const Role role = role_byte <= static_cast<uint8_t>(Role::kAdmin) ? static_cast<Role>(role_byte)
                                                                       : Role::kReader;
    const std::string answer = handler_.Handle(role, parts[envelope + 2].to_string_view());
    std::vector<zmq::message_t> out;
    for (size_t i = 0; i <= envelope; ++i) out.push_back(std::move(parts[i]));
    out.emplace_back(answer.data(), answer.size());
    SendAll(socket, out);
  }
}

}  // namespace shardledger
