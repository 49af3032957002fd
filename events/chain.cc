#include "events/chain.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace shardledger {

namespace {
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// SHA-256 fetched once: EVP_sha256() in EVP_DigestInit_ex makes OpenSSL 3 look the
// algorithm up in its provider tables on every call, which cost more than hashing a record.
const EVP_MD* Sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) std::abort();  // no SHA-256 provider: no record can be chained
  return md;
}

// One digest context per thread, reset for each record instead of allocated.
EVP_MD_CTX* ThreadContext() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) std::abort();
  return ctx.get();
}
}  // namespace

Hash256 RecordHash(const Hash256& prev_hash, std::string_view encoded, size_t hash_offset) {
  static constexpr uint8_t kZeros[32] = {};
  EVP_MD_CTX* ctx = ThreadContext();
  Hash256 out{};
  unsigned int size = 0;
  const size_t after = hash_offset + sizeof(kZeros);
  // Any failure here is an allocation failure inside OpenSSL: there is no hash to return.
  if (after > encoded.size() || EVP_DigestInit_ex2(ctx, Sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, prev_hash.data(), prev_hash.size()) != 1 ||
      EVP_DigestUpdate(ctx, encoded.data(), hash_offset) != 1 ||
      EVP_DigestUpdate(ctx, kZeros, sizeof(kZeros)) != 1 ||
      EVP_DigestUpdate(ctx, encoded.data() + after, encoded.size() - after) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &size) != 1 || size != out.size()) {
    std::abort();
  }
  return out;
}

EncodedRecord SealRecord(Record& record) {
  record.hash.fill(0);
  EncodedRecord encoded = EncodeRecord(record);
  record.hash = RecordHash(record.prev_hash, encoded.bytes, encoded.hash_offset);
  std::memcpy(encoded.bytes.data() + encoded.hash_offset, record.hash.data(), record.hash.size());
  return encoded;
}

}  // namespace shardledger
