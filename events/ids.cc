#include "events/ids.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

namespace shardledger {

Id128 RandomId128() {
  Id128 id;
  FillRandomId128s(&id, 1);
  return id;
}

void FillRandomId128s(Id128* ids, size_t count) {
  static_assert(sizeof(Id128) == 16, "ids are packed back to back");
  constexpr size_t kPerCall = size_t{1} << 20;  // RAND_bytes takes an int length
  auto* bytes = reinterpret_cast<uint8_t*>(ids);
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(count - done, kPerCall / sizeof(Id128));
    // RAND_bytes fails only when the OS entropy source is unusable; no id is safe then.
    if (RAND_bytes(bytes + done * sizeof(Id128), static_cast<int>(n * sizeof(Id128))) != 1) {
      std::abort();
    }
    done += n;
  }
}

std::string ToHex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool FromHex(std::string_view hex, uint8_t* out, size_t size) {
  if (hex.size() != size * 2) return false;
  for (size_t i = 0; i < size; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

}  // namespace shardledger
