#include "events/prefix_bucket_memtable.h"

#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "events/huge_page_arena.h"  // rocksdb::Allocator's declaration

namespace shardledger {

namespace {

// Levels of a bucket's skiplist, one in four nodes rising a level: a bucket stays logarithmic
// to ~65,000 keys. A stream puts at most 256 versions in one prefix (StreamOfKey); more lands
// in a bucket only when prefixes collide.
constexpr int kMaxHeight = 8;

// A key in the memtable: its links at each of its levels, then the key RocksDB encoded (a
// length-prefixed internal key). Allocated by Allocate, linked by Insert.
class Node {
 public:
  static size_t Bytes(int height, size_t key_bytes) {
    return sizeof(Node) + static_cast<size_t>(height) * sizeof(std::atomic<Node*>) + key_bytes;
  }
  static Node* Make(char* memory, int height) {
    auto* node = new (memory) Node(height);
    for (int i = 0; i < height; ++i) new (&node->links()[i]) std::atomic<Node*>(nullptr);
    return node;
  }

  int height() const { return static_cast<int>(height_); }
  char* key() { return reinterpret_cast<char*>(links() + height_); }
  const char* key() const { return reinterpret_cast<const char*>(links() + height_); }
  Node* Next(int level) const { return links()[level].load(std::memory_order_acquire); }
  void SetNext(int level, Node* node) { links()[level].store(node, std::memory_order_release); }
  // Before the node is linked anywhere: the link that publishes it orders this.
  void InitNext(int level, Node* node) { links()[level].store(node, std::memory_order_relaxed); }

 private:
  explicit Node(int height) : height_(static_cast<uint64_t>(height)) {}
  std::atomic<Node*>* links() { return reinterpret_cast<std::atomic<Node*>*>(this + 1); }
  const std::atomic<Node*>* links() const {
    return reinterpret_cast<const std::atomic<Node*>*>(this + 1);
  }

  uint64_t height_;  // 8 bytes, so the links after it are aligned
};
static_assert(sizeof(Node) == 8 && alignof(Node) == 8);

// A slot's keys once it has more than one.
struct Bucket {
  std::atomic<Node*> head[kMaxHeight];
  Node* tail[kMaxHeight];  // the last node at each level (null: none); the writer's alone
  std::atomic<int> height;
};

// A slot holds nothing, one node (its address with the low bit set) or a bucket.
using Slot = std::atomic<uintptr_t>;
constexpr uintptr_t kOneNode = 1;

// The first members of a `rocksdb::LookupKey` (the key a memtable Get is given), declared in
// RocksDB's internal db/dbformat.h, which Debian's librocksdb-dev does not install: where the
// memtable key starts (a varint32 length, then the internal key), where the internal key
// starts, and where both end. The same layout since RocksDB's first release; PartsOf checks
// it against the length the memtable key starts with on every call, and stops the process
// rather than read a key it cannot trust.
struct LookupKeyParts {
  const char* memtable_key;
  const char* internal_key;
  const char* end;
};

const LookupKeyParts& PartsOf(const rocksdb::LookupKey& key) {
  const auto& parts = *reinterpret_cast<const LookupKeyParts*>(&key);
  const rocksdb::Slice decoded = rocksdb::GetLengthPrefixedSlice(parts.memtable_key);
  if (decoded.data() != parts.internal_key || decoded.data() + decoded.size() != parts.end ||
      decoded.size() < 8) {
    std::fprintf(stderr, "rocksdb::LookupKey is not laid out as PrefixBucketMemtable expects\n");
    std::abort();
  }
  return parts;
}

// What a search compares against: a length-prefixed key, or else an internal key.
struct Target {
  const char* memtable_key;
  rocksdb::Slice internal_key;
};

class PrefixBucketRep final : public rocksdb::MemTableRep {
 public:
  PrefixBucketRep(const KeyComparator& compare, rocksdb::Allocator* allocator,
                  const rocksdb::SliceTransform* transform, size_t slots)
      : MemTableRep(allocator), compare_(compare), transform_(transform), slot_count_(slots) {
    // The allocator may hand out memory as an earlier memtable left it (events/huge_page_arena.h).
    char* memory = allocator->AllocateAligned(sizeof(Slot) * slot_count_);
    slots_ = reinterpret_cast<Slot*>(memory);
    for (size_t i = 0; i < slot_count_; ++i) new (&slots_[i]) Slot(0);
  }

  rocksdb::KeyHandle Allocate(const size_t len, char** buf) override {
    const int height = RandomHeight();
    Node* node = Node::Make(allocator_->AllocateAligned(Node::Bytes(height, len)), height);
    *buf = node->key();
    return node;
  }

  void Insert(rocksdb::KeyHandle handle) override {
    // Inserts are serialised: no read-modify-write needed.
    key_count_.store(key_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    Node* node = static_cast<Node*>(handle);
    Slot& slot = SlotOf(UserKey(node->key()));
    const uintptr_t held = slot.load(std::memory_order_relaxed);
    if (held == 0) {
      slot.store(reinterpret_cast<uintptr_t>(node) | kOneNode, std::memory_order_release);
      return;
    }
    Bucket* bucket = nullptr;
    if ((held & kOneNode) != 0) {
      // The second key: the slot's node becomes the first of a bucket, published complete.
      Node* only = reinterpret_cast<Node*>(held & ~kOneNode);
      bucket = new (allocator_->AllocateAligned(sizeof(Bucket))) Bucket;
      for (int i = 0; i < kMaxHeight; ++i) {
        const bool in = i < only->height();
        bucket->head[i].store(in ? only : nullptr, std::memory_order_relaxed);
        bucket->tail[i] = in ? only : nullptr;
      }
      bucket->height.store(only->height(), std::memory_order_relaxed);
      slot.store(reinterpret_cast<uintptr_t>(bucket), std::memory_order_release);
    } else {
      bucket = reinterpret_cast<Bucket*>(held);
    }
    InsertInto(*bucket, node);
  }

  bool Contains(const char* key) const override {
    Node* found = FirstAtOrAfter(SlotOf(UserKey(key)), Target{key, {}});
    return found != nullptr && compare_(found->key(), key) == 0;
  }

  size_t ApproximateMemoryUsage() override { return 0; }  // all of it is in the allocator

  // Calls `callback` with the keys of `key`'s slot from `key` on, until it returns false.
  // (RocksDB 7.8's MemTableRep::Get walks a prefix iterator it never frees: 32 bytes leaked
  // per Get, which LeakSanitizer found. This walks the slot itself.)
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    const LookupKeyParts& parts = PartsOf(key);
    const rocksdb::Slice internal_key(parts.internal_key,
                                      static_cast<size_t>(parts.end - parts.internal_key));
    const Slot& slot = SlotOf(rocksdb::Slice(internal_key.data(), internal_key.size() - 8));
    for (Node* node = FirstAtOrAfter(slot, Target{parts.memtable_key, internal_key});
         node != nullptr && callback(callback_args, node->key()); node = node->Next(0)) {
    }
  }

  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    return Place<PrefixIterator>(arena, *this);
  }
  Iterator* GetIterator(rocksdb::Arena* arena) override {
    return Place<SortedIterator>(arena, *this);
  }

 private:
  class PrefixIterator;
  class SortedIterator;

  // RocksDB hands iterators an `Arena`, an `Allocator` (its first and only base), and then
  // destroys them in place without freeing; without one they are deleted.
  template <typename It>
  static Iterator* Place(rocksdb::Arena* arena, const PrefixBucketRep& rep) {
    if (arena == nullptr) return new It(rep);
    auto* allocator = reinterpret_cast<rocksdb::Allocator*>(arena);
    return new (allocator->AllocateAligned(sizeof(It))) It(rep);
  }

  int RandomHeight() {
    int height = 1;
    while (height < kMaxHeight) {
      random_ ^= random_ << 13;
      random_ ^= random_ >> 7;
      random_ ^= random_ << 17;
      if ((random_ & 3) != 0) break;
      ++height;
    }
    return height;
  }

  Slot& SlotOf(const rocksdb::Slice& user_key) const {
    const rocksdb::Slice prefix = transform_ != nullptr && transform_->InDomain(user_key)
                                      ? transform_->Transform(user_key)
                                      : user_key;
    const size_t hash =
        std::hash<std::string_view>{}(std::string_view(prefix.data(), prefix.size()));
    return slots_[hash % slot_count_];
  }

  int Compare(const Node* node, const Target& target) const {
    return target.memtable_key != nullptr ? compare_(node->key(), target.memtable_key)
                                          : compare_(node->key(), target.internal_key);
  }

  static Node* Head(const Bucket& bucket, int level) {
    return bucket.head[level].load(std::memory_order_acquire);
  }

  // The last node of `bucket` for which `before(node)` holds (null: none), with the last
  // such node at each level in `prev` when given, and in `first_not_before` the node the
  // search stopped at on the bottom level (null: none). `before` must hold for a prefix of the
  // bucket's order. That node is the one read, not the link read again: beside the writer,
  // a node may have been linked after the returned one since.
  template <typename Before>
  static Node* LastWhere(const Bucket& bucket, Before before, Node** prev = nullptr,
                         Node** first_not_before = nullptr) {
    Node* at = nullptr;  // null: before the first node
    for (int level = bucket.height.load(std::memory_order_acquire) - 1; level >= 0;) {
      Node* next = at != nullptr ? at->Next(level) : Head(bucket, level);
      if (next != nullptr && before(next)) {
        at = next;
      } else {
        if (prev != nullptr) prev[level] = at;
        if (level == 0 && first_not_before != nullptr) *first_not_before = next;
        --level;
      }
    }
    return at;
  }

  // The slot's first key at or after `target` (`all`: its first key).
  Node* FirstAtOrAfter(const Slot& slot, const Target& target, bool all = false) const {
    const uintptr_t held = slot.load(std::memory_order_acquire);
    if (held == 0) return nullptr;
    if ((held & kOneNode) != 0) {
      Node* only = reinterpret_cast<Node*>(held & ~kOneNode);
      return all || Compare(only, target) >= 0 ? only : nullptr;
    }
    const Bucket& bucket = *reinterpret_cast<const Bucket*>(held);
    if (all) return Head(bucket, 0);
    Node* first = nullptr;
    LastWhere(bucket, [&](Node* n) { return Compare(n, target) < 0; }, nullptr, &first);
    return first;
  }

  // The slot's last key at or before `target` (`all`: its last key).
  Node* LastAtOrBefore(const Slot& slot, const Target& target, bool all = false) const {
    const uintptr_t held = slot.load(std::memory_order_acquire);
    if (held == 0) return nullptr;
    if ((held & kOneNode) != 0) {
      Node* only = reinterpret_cast<Node*>(held & ~kOneNode);
      return all || Compare(only, target) <= 0 ? only : nullptr;
    }
    const Bucket& bucket = *reinterpret_cast<const Bucket*>(held);
    return LastWhere(bucket, [&](Node* n) { return all || Compare(n, target) <= 0; });
  }

  Node* Before(const Slot& slot, const Node* node) const {
    const uintptr_t held = slot.load(std::memory_order_acquire);
    if (held == 0 || (held & kOneNode) != 0) return nullptr;  // a lone node has none before it
    const Bucket& bucket = *reinterpret_cast<const Bucket*>(held);
    return LastWhere(bucket, [&](Node* n) { return compare_(n->key(), node->key()) < 0; });
  }

  void InsertInto(Bucket& bucket, Node* node) {
    const int height = node->height();
    const int bucket_height = bucket.height.load(std::memory_order_relaxed);
    Node* prev[kMaxHeight] = {};
    Node* last = bucket.tail[0];
    if (last != nullptr && compare_(last->key(), node->key()) < 0) {
      // After every key of the bucket: at each of its levels it follows that level's last.
      for (int i = 0; i < height; ++i) prev[i] = bucket.tail[i];
    } else {
      LastWhere(
          bucket, [&](Node* n) { return compare_(n->key(), node->key()) < 0; }, prev);
    }
    for (int i = 0; i < height; ++i) {
      node->InitNext(i, prev[i] != nullptr ? prev[i]->Next(i) : Head(bucket, i));
    }
    for (int i = 0; i < height; ++i) {
      if (prev[i] != nullptr) {
        prev[i]->SetNext(i, node);
      } else {
        bucket.head[i].store(node, std::memory_order_release);
      }
      if (node->Next(i) == nullptr) bucket.tail[i] = node;
    }
    if (height > bucket_height) bucket.height.store(height, std::memory_order_release);
  }

  const KeyComparator& compare_;
  const rocksdb::SliceTransform* const transform_;
  const size_t slot_count_;
  std::atomic<size_t> key_count_{0};  // keys inserted, for the sorted iterator to size its array
  Slot* slots_ = nullptr;
  uint64_t random_ = 0x2545f4914f6cdd1dULL;  // the writer's alone, as Allocate is
};

class PrefixBucketRep::PrefixIterator final : public Iterator {
 public:
  explicit PrefixIterator(const PrefixBucketRep& rep) : rep_(rep) {}

  bool Valid() const override { return node_ != nullptr; }
  const char* key() const override { return node_->key(); }
  void Next() override { node_ = node_->Next(0); }
  void Prev() override { node_ = rep_.Before(*slot_, node_); }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    slot_ = &SlotFor(internal_key);
    node_ = rep_.FirstAtOrAfter(*slot_, Target{memtable_key, internal_key});
  }
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    slot_ = &SlotFor(internal_key);
    node_ = rep_.LastAtOrBefore(*slot_, Target{memtable_key, internal_key});
  }
  // A prefix iterator has no order across slots: these go to the first or last key of the
  // slot the last Seek chose (RocksDB's memtable iterator seeks, then goes to the last key
  // when the seek ran past the end, to answer SeekForPrev), and leave it invalid before any.
  void SeekToFirst() override {
    node_ =
        slot_ != nullptr ? rep_.FirstAtOrAfter(*slot_, Target{nullptr, {}}, /*all=*/true) : nullptr;
  }
  void SeekToLast() override {
    node_ =
        slot_ != nullptr ? rep_.LastAtOrBefore(*slot_, Target{nullptr, {}}, /*all=*/true) : nullptr;
  }

 private:
  const Slot& SlotFor(const rocksdb::Slice& internal_key) const {
    return rep_.SlotOf(rocksdb::Slice(internal_key.data(), internal_key.size() - 8));
  }

  const PrefixBucketRep& rep_;
  const Slot* slot_ = nullptr;
  Node* node_ = nullptr;
};

// Every key the memtable held when it was created, sorted.
//
// A flush sorts the whole memtable here: ~600,000 keys for a full `ids` memtable of 64 MiB.
// Compared through RocksDB's comparator, each comparison reads two keys at random addresses
// and makes two virtual calls; the flush thread then spent as long sorting as RocksDB spent
// building the sorted list of a hash-linklist memtable. So each key's first 16 bytes are held
// beside its address as two numbers, and the keys themselves are read only when those are
// equal. That order is the bytewise comparator's, the one every family of the
// log uses (PrefixBucketMemtable's requirement).
//
// Reading the keys is most of the work: each is at a random address. So the walk fetches
// ahead, and a bucket's chain is walked in one of several lanes at once. A large memtable is
// then sorted in two steps (SortByPrefix): a counting pass places the keys in 65,536 groups
// by the 16 bits after those all their prefixes share, and each group is sorted on its own,
// in cache. Before both, with a chain walked one node at a time and std::sort alone, this
// constructor took ~0.20 s of a ~0.45 s flush of 1M ids; now ~0.09 s of ~0.32 s
// (docs/event-log.md, "RocksDB settings").
class PrefixBucketRep::SortedIterator final : public Iterator {
 public:
  explicit SortedIterator(const PrefixBucketRep& rep) : compare_(rep.compare_) {
    std::vector<Sortable> sortable;
    sortable.reserve(rep.key_count_.load(std::memory_order_relaxed));
    // The slots are read in order, but what a slot leads to is at a random address: a lone
    // node's key, or a bucket and then its chain of nodes. A lone node and a bucket are
    // fetched kAhead slots before the walk reaches them. A bucket's chain is walked in one of
    // kLanes lanes, a step of each lane in turn, each step fetching that lane's next node, so
    // that up to kLanes chains wait on memory at once instead of one (a stream's bucket holds
    // 256 versions; ids' buckets two or three).
    constexpr size_t kAhead = 16;
    constexpr size_t kLanes = 8;
    const auto fetch_node = [](const Node* node) {
      __builtin_prefetch(node);
      __builtin_prefetch(reinterpret_cast<const char*>(node) + 40);  // the key's first bytes
    };
    const Node* lanes[kLanes] = {};
    size_t busy = 0;  // lanes walking a chain
    const auto step_lanes = [&] {
      for (const Node*& lane : lanes) {
        if (lane == nullptr) continue;
        sortable.push_back(Sortable::Of(lane->key()));
        lane = lane->Next(0);
        if (lane != nullptr) {
          fetch_node(lane);
        } else {
          --busy;
        }
      }
    };
    for (size_t i = 0; i < rep.slot_count_; ++i) {
      if (i + kAhead < rep.slot_count_) {
        const uintptr_t ahead = rep.slots_[i + kAhead].load(std::memory_order_acquire);
        if ((ahead & kOneNode) != 0) {
          fetch_node(reinterpret_cast<const Node*>(ahead & ~kOneNode));
        } else if (ahead != 0) {
          __builtin_prefetch(reinterpret_cast<const Bucket*>(ahead));
        }
      }
      const uintptr_t held = rep.slots_[i].load(std::memory_order_acquire);
      if (held == 0) continue;
      if ((held & kOneNode) != 0) {
        sortable.push_back(Sortable::Of(reinterpret_cast<const Node*>(held & ~kOneNode)->key()));
        continue;
      }
      const Node* head = Head(*reinterpret_cast<const Bucket*>(held), 0);
      if (head == nullptr) continue;
      fetch_node(head);
      while (busy == kLanes) step_lanes();
      *std::find(std::begin(lanes), std::end(lanes), nullptr) = head;
      ++busy;
    }
    while (busy > 0) step_lanes();
    SortByPrefix(sortable);
    keys_.reserve(sortable.size());
    for (const Sortable& entry : sortable) keys_.push_back(entry.key);
    at_ = keys_.size();
  }

  bool Valid() const override { return at_ < keys_.size(); }
  const char* key() const override { return keys_[at_]; }
  void Next() override {
    ++at_;
    // A flush reads the keys in this order, each at a random address: fetched ahead.
    if (at_ + kReadAhead < keys_.size()) {
      __builtin_prefetch(keys_[at_ + kReadAhead]);
      __builtin_prefetch(keys_[at_ + kReadAhead] + 32);
    }
  }
  void Prev() override { at_ = at_ == 0 ? keys_.size() : at_ - 1; }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    at_ = static_cast<size_t>(
        std::partition_point(keys_.begin(), keys_.end(),
                             [&](const char* k) { return Less(k, internal_key, memtable_key); }) -
        keys_.begin());
  }
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const size_t after = static_cast<size_t>(
        std::partition_point(
            keys_.begin(), keys_.end(),
            [&](const char* k) { return Compare(k, internal_key, memtable_key) <= 0; }) -
        keys_.begin());
    at_ = after == 0 ? keys_.size() : after - 1;
  }
  void SeekToFirst() override { at_ = 0; }
  void SeekToLast() override { at_ = keys_.empty() ? 0 : keys_.size() - 1; }

 private:
  int Compare(const char* k, const rocksdb::Slice& internal_key, const char* memtable_key) const {
    return memtable_key != nullptr ? compare_(k, memtable_key) : compare_(k, internal_key);
  }
  bool Less(const char* k, const rocksdb::Slice& ik, const char* mk) const {
    return Compare(k, ik, mk) < 0;
  }

  // A key with the first 16 bytes of its user key as two big-endian numbers, zero-padded.
  // Bytewise, a key shorter than 16 bytes sorts before a longer one it begins: padded, the two
  // compare equal or the shorter one lower, never higher, so equal numbers leave the order to
  // the comparator and unequal ones agree with it.
  struct Sortable {
    uint64_t high = 0;
    uint64_t low = 0;
    const char* key = nullptr;

    static Sortable Of(const char* memtable_key) {
      const rocksdb::Slice internal_key = rocksdb::GetLengthPrefixedSlice(memtable_key);
      unsigned char first[16] = {};
      std::memcpy(first, internal_key.data(), std::min<size_t>(16, internal_key.size() - 8));
      return Sortable{BigEndian(first), BigEndian(first + 8), memtable_key};
    }
    static uint64_t BigEndian(const unsigned char* bytes) {
      uint64_t value = 0;
      for (int i = 0; i < 8; ++i) value = (value << 8) | bytes[i];
      return value;
    }
  };

  // The order of two keys: their first 16 bytes as numbers, then the comparator.
  bool Before(const Sortable& a, const Sortable& b) const;

  // Sorts `keys` into Before's order. Below kRadixFrom keys, std::sort alone. Above, a
  // counting pass first: all the keys' 128-bit prefixes agree above some bit (none, when the
  // first ones differ), so the 16 bits below it order any two keys whose 16 bits there
  // differ. The keys are placed by those bits into 65,536 groups, in order, and each group
  // is sorted on its own with Before. Random ids spread ~10 to a group; keys that share a
  // long beginning (a stream's name) still group by what follows it.
  void SortByPrefix(std::vector<Sortable>& keys) const;

  static constexpr size_t kReadAhead = 8;
  const KeyComparator& compare_;
  std::vector<const char*> keys_;
  size_t at_ = 0;
};

bool PrefixBucketRep::SortedIterator::Before(const Sortable& a, const Sortable& b) const {
  if (a.high != b.high) return a.high < b.high;
  if (a.low != b.low) return a.low < b.low;
  return compare_(a.key, b.key) < 0;  // the same first 16 bytes: the keys decide
}

void PrefixBucketRep::SortedIterator::SortByPrefix(std::vector<Sortable>& keys) const {
  constexpr size_t kRadixFrom = 4096;
  constexpr int kBits = 16;
  const auto before = [&](const Sortable& a, const Sortable& b) { return Before(a, b); };
  if (keys.size() < kRadixFrom) {
    std::sort(keys.begin(), keys.end(), before);
    return;
  }
  uint64_t differ_high = 0;
  uint64_t differ_low = 0;
  for (const Sortable& key : keys) {
    differ_high |= key.high ^ keys[0].high;
    differ_low |= key.low ^ keys[0].low;
  }
  if (differ_high == 0 && differ_low == 0) {  // one 16-byte prefix: the keys decide
    std::sort(keys.begin(), keys.end(), before);
    return;
  }
  // The bits above `skip` (counted from the top of the 128) are the same in every key.
  const int skip =
      differ_high != 0 ? __builtin_clzll(differ_high) : 64 + __builtin_clzll(differ_low);
  // The 64 bits of the prefix from `skip` on; its top kBits name the group.
  const auto group_of = [skip](const Sortable& key) {
    const uint64_t from_skip = skip == 0   ? key.high
                               : skip < 64 ? key.high << skip | key.low >> (64 - skip)
                                           : key.low << (skip - 64);
    return static_cast<size_t>(from_skip >> (64 - kBits));
  };
  std::vector<size_t> starts((size_t{1} << kBits) + 1, 0);
  for (const Sortable& key : keys) ++starts[group_of(key) + 1];
  for (size_t g = 1; g < starts.size(); ++g) starts[g] += starts[g - 1];
  std::vector<Sortable> grouped(keys.size());
  std::vector<size_t> next(starts.begin(), starts.end() - 1);
  for (const Sortable& key : keys) grouped[next[group_of(key)]++] = key;
  for (size_t g = 0; g + 1 < starts.size(); ++g) {
    if (starts[g + 1] - starts[g] > 1) {
      std::sort(grouped.begin() + starts[g], grouped.begin() + starts[g + 1], before);
    }
  }
  keys.swap(grouped);
}

class PrefixBucketFactory final : public rocksdb::MemTableRepFactory {
 public:
  explicit PrefixBucketFactory(size_t slots) : slots_(slots) {}

  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* transform,
                                          rocksdb::Logger* /*logger*/) override {
    return new PrefixBucketRep(compare, allocator, transform, slots_);
  }
  const char* Name() const override { return "shardledger.PrefixBuckets"; }
  bool IsInsertConcurrentlySupported() const override { return false; }

 private:
  const size_t slots_;
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> PrefixBucketMemtable(size_t slots) {
  return std::make_shared<PrefixBucketFactory>(std::max<size_t>(slots, 1));
}

}  // namespace shardledger
