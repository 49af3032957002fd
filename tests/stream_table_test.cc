// StreamTable: the writer's stream version cache.
#include "events/stream_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shardledger {
namespace {

std::string Name(int i) { return "workflow/wf-" + std::to_string(i * 7919); }

TEST(StreamTable, FindsWhatWasInsertedAndNothingElse) {
  StreamTable table;
  EXPECT_EQ(table.Find("a", StreamTable::Hash("a")), nullptr);  // empty: no slots yet
  constexpr int kCount = 100'000;                               // many growths
  for (int i = 0; i < kCount; ++i) {
    const std::string name = Name(i);
    ASSERT_EQ(table.Find(name, StreamTable::Hash(name)), nullptr) << name;
    StreamTable::Entry* entry = table.Insert(name, StreamTable::Hash(name), i);
    EXPECT_EQ(entry->name(), name);
    EXPECT_EQ(entry->version, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(table.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    const std::string name = Name(i);
    const StreamTable::Entry* entry = table.Find(name, StreamTable::Hash(name));
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->name(), name);
    EXPECT_EQ(entry->version, static_cast<uint64_t>(i));
  }
  for (int i = kCount; i < kCount + 1000; ++i) {
    const std::string name = Name(i);
    EXPECT_EQ(table.Find(name, StreamTable::Hash(name)), nullptr) << name;
  }
}

TEST(StreamTable, EntriesStayPutAsTheTableGrows) {
  StreamTable table;
  std::vector<StreamTable::Entry*> first;
  for (int i = 0; i < 100; ++i) {
    first.push_back(table.Insert(Name(i), StreamTable::Hash(Name(i)), 1));
    first.back()->version = 1000 + i;  // written through the pointer
  }
  for (int i = 100; i < 50'000; ++i) table.Insert(Name(i), StreamTable::Hash(Name(i)), 1);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(table.Find(Name(i), StreamTable::Hash(Name(i))), first[i]);
    EXPECT_EQ(first[i]->version, static_cast<uint64_t>(1000 + i));
  }
}

TEST(StreamTable, NamesWithTheSameHashAreToldApart) {
  // Every name under one hash: each lookup probes past the others and compares names.
  StreamTable table;
  constexpr uint64_t kHash = 42;
  for (int i = 0; i < 300; ++i) table.Insert(Name(i), kHash, i);
  for (int i = 0; i < 300; ++i) {
    const StreamTable::Entry* entry = table.Find(Name(i), kHash);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->version, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(table.Find(Name(300), kHash), nullptr);
  // The same name under another hash is another key: callers always pass Hash(name).
  EXPECT_EQ(table.Find(Name(0), kHash + 1), nullptr);
}

TEST(StreamTable, KeepsLongEmptyAndPrefixNames) {
  StreamTable table;
  const std::string long_name(3 << 20, 'x');  // longer than a block of names
  const std::vector<std::string> names = {"", "a", "ab", "abc", long_name, long_name + "y"};
  for (size_t i = 0; i < names.size(); ++i) {
    table.Insert(names[i], StreamTable::Hash(names[i]), i + 1);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const StreamTable::Entry* entry = table.Find(names[i], StreamTable::Hash(names[i]));
    ASSERT_NE(entry, nullptr) << i;
    EXPECT_EQ(entry->name(), names[i]);
    EXPECT_EQ(entry->version, i + 1);
  }
}

TEST(StreamTable, ClearForgetsEverything) {
  StreamTable table;
  for (int i = 0; i < 5000; ++i) table.Insert(Name(i), StreamTable::Hash(Name(i)), 7);
  table.Clear();
  EXPECT_EQ(table.size(), 0u);
  for (int i = 0; i < 5000; ++i) {
    EXPECT_EQ(table.Find(Name(i), StreamTable::Hash(Name(i))), nullptr);
  }
  // Usable again after a clear.
  StreamTable::Entry* entry = table.Insert(Name(1), StreamTable::Hash(Name(1)), 9);
  EXPECT_EQ(table.Find(Name(1), StreamTable::Hash(Name(1))), entry);
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace shardledger
