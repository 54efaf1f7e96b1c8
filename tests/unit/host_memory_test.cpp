// Reading the host's available memory (gossiped as free model memory until a budget exists).
#include "shoal/host_memory.hpp"

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

TEST(host_memory, this_machine_reports_some) {
  auto v = read_available_memory();
  ASSERT_TRUE(v.has_value());
  EXPECT_GT(*v, 1ull << 20);
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
