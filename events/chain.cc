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
}  // namespace

Hash256 RecordHash(const Hash256& prev_hash, std::string_view encoded, size_t hash_offset) {
  static constexpr uint8_t kZeros[32] = {};
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  Hash256 out{};
  unsigned int size = 0;
  const size_t after = hash_offset + sizeof(kZeros);
  // Any failure here is an allocation failure inside OpenSSL: there is no hash to return.
  if (!ctx || after > encoded.size() ||
      EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), prev_hash.data(), prev_hash.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), encoded.data(), hash_offset) != 1 ||
      EVP_DigestUpdate(ctx.get(), kZeros, sizeof(kZeros)) != 1 ||
      EVP_DigestUpdate(ctx.get(), encoded.data() + after, encoded.size() - after) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &size) != 1 || size != out.size()) {
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
