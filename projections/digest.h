// A projection's digest: SHA-256 over a sequence of length-framed byte strings, so equal
// ordered contents give equal digests and no two sequences run together.
#pragma once

#include <openssl/evp.h>

#include <cstdlib>
#include <memory>
#include <string_view>

#include "events/ids.h"
#include "projections/bytes.h"

namespace shardledger {

class ContentDigest {
 public:
  ContentDigest() : ctx_(EVP_MD_CTX_new()) {
    // OpenSSL fails here only when it cannot allocate: there is no digest to give.
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) std::abort();
  }
  void Feed(std::string_view bytes) {
    const std::string framed = ByteWriter().Str(bytes).Take();
    if (EVP_DigestUpdate(ctx_.get(), framed.data(), framed.size()) != 1) std::abort();
  }
  Hash256 Finish() {
    Hash256 out{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &size) != 1) std::abort();
    return out;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

}  // namespace shardledger
