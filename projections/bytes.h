// Little binary encoders for projection rows: fixed-width little-endian integers and
// length-prefixed strings. Reading past the end is reported, never performed.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace shardledger {

class ByteWriter {
 public:
  ByteWriter& U8(uint8_t v) { return Raw(&v, 1); }
  ByteWriter& U32(uint32_t v) { return Int(v, 4); }
  ByteWriter& U64(uint64_t v) { return Int(v, 8); }
  ByteWriter& I64(int64_t v) { return Int(static_cast<uint64_t>(v), 8); }
  ByteWriter& Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  const std::string& bytes() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  ByteWriter& Int(uint64_t v, int width) {
    for (int i = 0; i < width; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  ByteWriter& Raw(const void* p, size_t n) {
    out_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  uint8_t U8() { return static_cast<uint8_t>(Int(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Int(4)); }
  uint64_t U64() { return Int(8); }
  int64_t I64() { return static_cast<int64_t>(Int(8)); }
  std::string Str() {
    const uint32_t size = U32();
    if (!ok_ || size > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string out(in_.substr(0, size));
    in_.remove_prefix(size);
    return out;
  }

 private:
  uint64_t Int(int width) {
    if (!ok_ || in_.size() < static_cast<size_t>(width)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(width);
    return v;
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace shardledger
