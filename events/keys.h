// Key encodings of the log's column families (DESIGN.md section 2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shardledger {

inline void AppendBigEndian64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

inline std::string BigEndian64(uint64_t value) {
  std::string out;
  out.reserve(8);
  AppendBigEndian64(out, value);
  return out;
}

// Reads 8 big-endian bytes; `bytes` must hold at least 8.
inline uint64_t ReadBigEndian64(std::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// `streams` column family: stream || 0x00 || version (big-endian).
inline std::string StreamKey(std::string_view stream, uint64_t version) {
  std::string key;
  key.reserve(stream.size() + 9);
  key.append(stream);
  key.push_back('\0');
  AppendBigEndian64(key, version);
  return key;
}

}  // namespace shardledger
