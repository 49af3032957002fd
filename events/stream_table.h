// StreamTable: the writer's cache of stream versions, by stream name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string_view>
#include <vector>

#include "events/memory.h"

namespace shardledger {

// Stream name → version, for one thread. Built for the writer's hot loop: a
// shard-count change looks up 200,000 streams among a million, in no order, and with
// std::unordered_map each lookup waited on three cache misses in a row (bucket, node, the
// name's heap bytes): a third of the writer's staging time. Here a lookup reads one slot of a
// flat array (the name's hash and its entry) and the entry, which holds the name in line.
// Both can be fetched ahead (PrefetchSlot, then PrefetchEntry) from the hash alone, so a loop
// that knows its next names' hashes overlaps the misses instead of waiting on each.
//
// Open addressing with linear probing, at most half full. Entries never move once inserted
// (the pointers Find and Insert return stay valid until Clear); nothing is ever erased alone.
class StreamTable {
 public:
  class Entry {
   public:
    uint64_t version = 0;
    std::string_view name() const { return {reinterpret_cast<const char*>(this + 1), size_}; }

   private:
    friend class StreamTable;
    uint32_t size_ = 0;
  };

  static uint64_t Hash(std::string_view name) { return std::hash<std::string_view>{}(name); }

  // The entry for `name` (whose Hash is `hash`), or nullptr.
  Entry* Find(std::string_view name, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.entry == nullptr) return nullptr;
      if (slot.hash == hash && slot.entry->name() == name) return slot.entry;
    }
  }

  // Adds `name`, which must be absent, at `version`.
  Entry* Insert(std::string_view name, uint64_t hash, uint64_t version) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    // The name follows its entry; sizes round up to 8 bytes so every entry stays aligned.
    const size_t bytes = (sizeof(Entry) + name.size() + 7) & ~size_t{7};
    auto* entry = new (names_.Take(bytes)) Entry();
    entry->version = version;
    entry->size_ = static_cast<uint32_t>(name.size());
    std::memcpy(entry + 1, name.data(), name.size());
    Place(Slot{hash, entry});
    ++size_;
    return entry;
  }

  // Starts fetching the slot where a lookup of `hash` begins.
  void PrefetchSlot(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }
  // Starts fetching the entry in that slot, if it is the one for `hash` (it usually is: the
  // table is at most half full). Reads the slot: call it a while after PrefetchSlot.
  void PrefetchEntry(uint64_t hash) const {
    if (slots_.empty()) return;
    const Slot& slot = slots_[hash & mask_];
    if (slot.entry != nullptr && slot.hash == hash) __builtin_prefetch(slot.entry);
  }

  size_t size() const { return size_; }

  void Clear() {
    slots_ = {};
    mask_ = 0;
    size_ = 0;
    names_ = ByteArena(kNameBlockBytes);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    Entry* entry = nullptr;  // nullptr: empty
  };
  static constexpr size_t kNameBlockBytes = size_t{1} << 20;
  static constexpr size_t kMinSlots = 1024;

  void Place(Slot slot) {
    size_t i = slot.hash & mask_;
    while (slots_[i].entry != nullptr) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max(kMinSlots, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.entry != nullptr) Place(slot);
    }
  }

  std::vector<Slot> slots_;  // a power of two long, or empty
  size_t mask_ = 0;
  size_t size_ = 0;
  ByteArena names_{kNameBlockBytes};  // the entries, each with its name after it
};

}  // namespace shardledger
