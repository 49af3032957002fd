// Fixed-size byte values of the log: 16-byte event ids and 32-byte hashes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardledger {

// 16 bytes chosen by a writer: event ids, correlation and causation ids.
using Id128 = std::array<uint8_t, 16>;
// A SHA-256 digest.
using Hash256 = std::array<uint8_t, 32>;

// A fresh random Id128 from the operating system's CSPRNG.
Id128 RandomId128();
// Fills `count` ids with one call to the CSPRNG (a per-id call costs ~2 µs of locking and
// reseed checks inside OpenSSL; a command that mints 200,000 ids pays that once).
void FillRandomId128s(Id128* ids, size_t count);

// Lower-case hex of any byte array.
std::string ToHex(const uint8_t* data, size_t size);
template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& bytes) {
  return ToHex(bytes.data(), N);
}

// Parses exactly 2*N hex digits; false when `hex` is not that.
bool FromHex(std::string_view hex, uint8_t* out, size_t size);

// True when every byte is zero (the "absent" correlation or causation id).
template <size_t N>
bool IsZero(const std::array<uint8_t, N>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

struct Id128Hash {
  size_t operator()(const Id128& id) const {
    uint64_t a = 0;
    for (int i = 0; i < 8; ++i) a = (a << 8) | id[i];
    return static_cast<size_t>(a);
  }
};

}  // namespace shardledger
