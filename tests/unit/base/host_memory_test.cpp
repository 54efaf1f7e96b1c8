// Reading the host's memory: MemTotal sets the default model budget, MemAvailable caps the free
// model memory a node gossips.
#include "shoal/base/host_memory.hpp"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(host_memory, mem_available_is_read_in_bytes) {
  EXPECT_EQ(parse_mem_available("MemTotal:       24684104 kB\nMemFree:        22254980 kB\n"
                                "MemAvailable:   22929336 kB\nBuffers:          110848 kB\n"),
            22929336ull * 1024);
  EXPECT_EQ(parse_mem_available("MemTotal: 1 kB\n"), std::nullopt) << "old kernels lack it";
  EXPECT_EQ(parse_mem_available("MemAvailable: lots\n"), std::nullopt);
  EXPECT_EQ(parse_mem_available("MemAvailable: 12 MB\n"), std::nullopt);
}

TEST(host_memory, any_field_is_read_in_bytes) {
  const std::string text = "MemTotal:       24684104 kB\nMemAvailable:   22929336 kB\n";
  EXPECT_EQ(parse_meminfo(text, "MemTotal"), 24684104ull * 1024);
  EXPECT_EQ(parse_meminfo(text, "MemFree"), std::nullopt);
  EXPECT_EQ(parse_meminfo("MemTotalX: 5 kB\n", "MemTotal"), std::nullopt) << "whole names only";
}

TEST(host_memory, this_machine_reports_some) {
  auto v = read_available_memory();
  ASSERT_TRUE(v.has_value());
  EXPECT_GT(*v, 1ull << 20);
  auto total = read_total_memory();
  ASSERT_TRUE(total.has_value());
  EXPECT_GE(*total, *v);
}

TEST(host_memory, bytes_for_people) {
  EXPECT_EQ(bytes_text(0), "0");
  EXPECT_EQ(bytes_text(900), "900");
  EXPECT_EQ(bytes_text(1536), "1.5K");
  EXPECT_EQ(bytes_text(700ull << 20), "700M");
  EXPECT_EQ(bytes_text(3ull << 30), "3.0G");
  EXPECT_EQ(bytes_text(12ull << 30), "12G");
}

}  // namespace
}  // namespace shoal
