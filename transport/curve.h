// CURVE authentication (DESIGN.md section 6): key files, the allow-list of client keys with
// their roles, and the ZAP handler that admits only listed keys.
//
// Key files are text, one "name = value" per line, keys in Z85:
//   public-key = <40 characters>
//   secret-key = <40 characters>      (absent from a public key file)
// The allow-list has one client per line: "<public key Z85> <reader|writer|admin> [comment]";
// blank lines and lines starting with '#' are skipped.
#pragma once

#include <zmq.hpp>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "events/status.h"
#include "transport/wire.h"

namespace shardledger {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty for a public key alone
};

Result<CurveKeyPair> GenerateCurveKeyPair();
// Writes `<base>.key` (both keys, mode 0600) and `<base>.pub` (the public key).
Status WriteCurveKeyFiles(const CurveKeyPair& keys, const std::string& base);
// Reads a key file; `need_secret` refuses one without a secret key.
Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret);

// Public key (Z85) -> role.
using AllowList = std::map<std::string, Role>;
Result<AllowList> ReadAllowList(const std::string& path);

// Answers ZeroMQ's authentication requests (ZAP) for sockets of `context`: a CURVE client
// whose key is in the allow-list is admitted with its role as the User-Id; any other is
// refused at the handshake. Runs until destroyed.
class ZapHandler {
 public:
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context, AllowList allow);
  ~ZapHandler();

 private:
  ZapHandler(zmq::context_t& context, AllowList allow);
  void Run();

  zmq::socket_t socket_;
  AllowList allow_;
  zmq::socket_t stop_pair_;     // the destructor's signal to Run
  zmq::socket_t stop_trigger_;
  std::thread thread_;
};

}  // namespace shardledger
