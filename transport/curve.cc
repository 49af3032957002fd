#include "transport/curve.h"

#include <sys/stat.h>
#include <zmq.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <sstream>

namespace shardledger {
namespace {

std::string Trim(std::string s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

bool ValidZ85Key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

// Calls `visit(line, where)` for each line of `path` that is neither blank nor a '#' comment,
// trimmed; `where` is "path:number: " for messages. Stops at the first error `visit` returns.
Status ForEachLine(const std::string& path, const std::string& what,
                   const std::function<Status(const std::string& line, const std::string& where)>& visit) {
  std::ifstream in(path);
  if (!in) return Status(ErrorCode::kNotFound, "cannot read " + what + " " + path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    SL_RETURN_IF_ERROR(visit(line, path + ":" + std::to_string(number) + ": "));
  }
  return Status::Ok();
}

}  // namespace

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Status(ErrorCode::kUnavailable,
                  std::string("CURVE key generation failed (libzmq without CURVE?): ") +
                      zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{public_key, secret_key};
}

Status WriteCurveKeyFiles(const CurveKeyPair& keys, const std::string& base) {
  {
    const std::string path = base + ".key";
    const mode_t old_mask = ::umask(077);
    std::ofstream out(path, std::ios::trunc);
    ::umask(old_mask);
    out << "# shardledger CURVE key pair: keep this file secret\n"
        << "public-key = " << keys.public_key << "\n"
        << "secret-key = " << keys.secret_key << "\n";
    if (!out) return Status(ErrorCode::kIoError, "cannot write " + path);
  }
  const std::string path = base + ".pub";
  std::ofstream out(path, std::ios::trunc);
  out << "# shardledger CURVE public key\n"
      << "public-key = " << keys.public_key << "\n";
  if (!out) return Status(ErrorCode::kIoError, "cannot write " + path);
  return Status::Ok();
}

Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret) {
  CurveKeyPair keys;
  SL_RETURN_IF_ERROR(ForEachLine(path, "key file", [&](const std::string& line, const std::string& where) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) return Status(ErrorCode::kBadRequest, where + "expected name = value");
    const std::string name = Trim(line.substr(0, eq));
    const std::string value = Trim(line.substr(eq + 1));
    if (name != "public-key" && name != "secret-key") {
      return Status(ErrorCode::kBadRequest, where + "unknown key '" + name + "'");
    }
    if (!ValidZ85Key(value)) {
      return Status(ErrorCode::kBadRequest, where + name + " is not a 40-character Z85 key");
    }
    (name == "public-key" ? keys.public_key : keys.secret_key) = value;
    return Status::Ok();
  }));
  if (keys.public_key.empty()) return Status(ErrorCode::kBadRequest, path + ": no public-key");
  if (need_secret && keys.secret_key.empty()) {
    return Status(ErrorCode::kBadRequest, path + ": no secret-key (is this a .pub file?)");
  }
  return keys;
}

Result<AllowList> ReadAllowList(const std::string& path) {
  AllowList allow;
  SL_RETURN_IF_ERROR(ForEachLine(path, "allow-list", [&](const std::string& line, const std::string& where) {
    std::istringstream fields(line);
    std::string key, role_name;
    fields >> key >> role_name;
    if (!ValidZ85Key(key)) return Status(ErrorCode::kBadRequest, where + "not a 40-character Z85 public key");
    const auto role = ParseRole(role_name);
    if (!role) {
      return Status(ErrorCode::kBadRequest, where + "role '" + role_name + "' is not one of reader, writer, admin");
    }
    allow[key] = *role;
    return Status::Ok();
  }));
  return allow;
}

ZapHandler::ZapHandler(zmq::context_t& context, AllowList allow)
    : socket_(context, zmq::socket_type::rep),
      allow_(std::move(allow)),
      stop_pair_(context, zmq::socket_type::pair),
      stop_trigger_(context, zmq::socket_type::pair) {}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context, AllowList allow) {
  std::unique_ptr<ZapHandler> zap(new ZapHandler(context, std::move(allow)));
  static std::atomic<int> counter{0};
  const std::string stop_endpoint = "inproc://shardledger-zap-stop-" + std::to_string(counter++);
  try {
    zap->socket_.set(zmq::sockopt::linger, 0);
    zap->socket_.bind("inproc://zeromq.zap.01");
    zap->stop_pair_.bind(stop_endpoint);
    zap->stop_trigger_.connect(stop_endpoint);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable, std::string("starting the ZAP handler: ") + e.what());
  }
  zap->thread_ = std::thread([raw = zap.get()] { raw->Run(); });
  return zap;
}

ZapHandler::~ZapHandler() {
  try {
    stop_trigger_.send(zmq::str_buffer("stop"), zmq::send_flags::none);
  } catch (const zmq::error_t&) {
    // The context is terminating: Run sees ETERM and returns by itself.
  }
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Run() {
  try {
    for (;;) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {stop_pair_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) return;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      // Request: version, request id, domain, address, identity, mechanism, credentials...
      std::vector<zmq::message_t> frames;
      do {
        frames.emplace_back();
        if (!socket_.recv(frames.back())) break;
      } while (frames.back().more());
      std::string status = "400", text = "malformed ZAP request", user;
      if (frames.size() >= 6) {
        const std::string mechanism = frames[5].to_string();
        if (mechanism != "CURVE" || frames.size() < 7 || frames[6].size() != 32) {
          text = "only CURVE clients are admitted";
        } else {
          char z85[41];
          zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
          auto it = allow_.find(z85);
          if (it == allow_.end()) {
            text = "client key not in the allow-list";
          } else {
            status = "200";
            text = "OK";
            user = std::string(RoleName(it->second));
          }
        }
      }
      const std::string version = frames.empty() ? "1.0" : frames[0].to_string();
      const std::string request_id = frames.size() > 1 ? frames[1].to_string() : "";
      socket_.send(zmq::buffer(version), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(user), zmq::send_flags::sndmore);
      socket_.send(zmq::str_buffer(""), zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;  // anything but the context closing is a bug: fail loudly
  }
}

}  // namespace shardledger
