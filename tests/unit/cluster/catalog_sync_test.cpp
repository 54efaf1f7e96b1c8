// Catalog replication between replicas: the sync codec and the reply rules, exercised by two
// and three replicas talking through sync_reply() only.
#include "shoal/cluster/catalog_sync.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "proto/shoal.pb.h"
#include "support/catalog_dump.hpp"
#include "support/replica_steps.hpp"

namespace shoal {
namespace {

using testing::dump;

using testing::push_on;

// A replica with an address, as a node would hold it.
struct peer {
  std::string address;
  replicated_catalog replica;
};

// Delivers `m` to `to` as the catalog actor does: add each change (noting gaps), then answer.
std::optional<catalog_sync_msg> deliver(peer& to, const catalog_sync_msg& m) {
  // Through the codec, as on the wire.
  auto decoded = decode_catalog_sync(encode_catalog_sync(m));
  EXPECT_TRUE(decoded.is_ok()) << decoded.error().message();
  bool gap = false;
  for (const auto& c : decoded->changes) {
    auto r = to.replica.add(c, 0);
    if (!r.is_ok()) {
      EXPECT_EQ(r.error().code(), status_code::failed_precondition) << r.error().message();
      gap = true;
    }
  }
  return sync_reply(to.replica, *decoded, gap, to.address);
}

// Runs a conversation started by `first` (sent to b by a) until nobody has anything to say;
// returns how many messages it took.
int converse(peer& a, peer& b, catalog_sync_msg first) {
  std::deque<std::pair<peer*, catalog_sync_msg>> wire{{&b, std::move(first)}};
  int messages = 0;
  while (!wire.empty()) {
    auto [to, m] = std::move(wire.front());
    wire.pop_front();
    ++messages;
    auto answer = deliver(*to, m);
    if (answer) wire.emplace_back(to == &a ? &b : &a, std::move(*answer));
    if (messages > 1000) {
      ADD_FAILURE() << "the conversation does not end";
      break;
    }
  }
  return messages;
}

TEST(catalog_sync, messages_round_trip_through_the_codec) {
  replicated_catalog r("n1");
  catalog_sync_msg m;
  m.from_address = "127.0.0.1:7420";
  m.changes = push_on(r, model_id{"acme", "bot"}, "s1", 1000);
  auto back = decode_catalog_sync(encode_catalog_sync(m));
  ASSERT_TRUE(back.is_ok()) << back.error().message();
  EXPECT_EQ(back->from_address, m.from_address);
  ASSERT_EQ(back->changes.size(), 2u);
  EXPECT_EQ(back->changes[1].origin, "n1");
  EXPECT_EQ(back->changes[1].seq, 2u);
  EXPECT_EQ(back->changes[1].at, m.changes[1].at);
  EXPECT_EQ(back->changes[1].label, "production");
  EXPECT_FALSE(back->frontier.has_value());
  m.frontier = catalog_frontier{};  // "I hold nothing" differs from no frontier
  back = decode_catalog_sync(encode_catalog_sync(m));
  ASSERT_TRUE(back->frontier.has_value());
  EXPECT_TRUE(back->frontier->empty());
  m.frontier = catalog_frontier{{"n1", 2}, {"n2", 7}};
  EXPECT_EQ(decode_catalog_sync(encode_catalog_sync(m))->frontier, m.frontier);
}

TEST(catalog_sync, malformed_messages_are_refused_with_the_reason) {
  replicated_catalog r("n1");
  catalog_sync_msg good;
  good.from_address = "127.0.0.1:7420";
  good.changes = push_on(r, model_id{"acme", "bot"}, "s1", 1000);
  auto refused = [](catalog_sync_msg m) {
    auto d = decode_catalog_sync(encode_catalog_sync(m));
    return d.is_ok() ? std::string("accepted") : d.error().message();
  };
  auto m = good;
  m.from_address = "nowhere";
  EXPECT_EQ(refused(m), "the sender's address is not HOST:PORT");
  m = good;
  m.changes[0].origin = "";
  EXPECT_EQ(refused(m), "catalog change 1: no origin, or one too long");
  m = good;
  m.changes[1].seq = 0;
  EXPECT_EQ(refused(m), "catalog change 2: no seq");
  m = good;
  m.changes.assign(max_sync_changes + 1, good.changes[0]);
  EXPECT_EQ(refused(m), "a catalog sync carries 257 changes; the limit is 256");
  EXPECT_EQ(decode_catalog_sync("\xff\xff garbage").error().message(),
            "the catalog payload is not a CatalogSync");
  pb::CatalogSync unknown;
  unknown.set_from_address("127.0.0.1:1");
  unknown.add_changes()->set_kind(static_cast<pb::CatalogChange::Kind>(99));
  EXPECT_NE(decode_catalog_sync(unknown.SerializeAsString()).error().message().find("kind 99"),
            std::string::npos);
}

// Two replicas that each took changes while apart (more than one message's worth) agree after
// one frontier from either side, in a bounded number of messages.
TEST(catalog_sync, a_frontier_starts_a_conversation_that_leaves_both_replicas_equal) {
  peer a{"127.0.0.1:1", replicated_catalog("a")}, b{"127.0.0.1:2", replicated_catalog("b")};
  for (int i = 0; i < 300; ++i) {
    push_on(a.replica, model_id{"acme", "m" + std::to_string(i % 7)}, "a" + std::to_string(i), 1000 + i);
  }
  for (int i = 0; i < 40; ++i) {
    push_on(b.replica, model_id{"beta", "m" + std::to_string(i % 3)}, "b" + std::to_string(i), 1000 + i);
  }
  catalog_sync_msg hello;
  hello.from_address = b.address;
  hello.frontier = b.replica.frontier();
  int messages = converse(b, a, hello);  // b -> a: "here is what I hold"
  EXPECT_EQ(dump(a.replica.view()), dump(b.replica.view()));
  EXPECT_EQ(a.replica.frontier(), b.replica.frontier());
  EXPECT_LE(messages, 6) << "a's 307 changes take two messages of at most 256";
}

// An eagerly pushed change that overtook an earlier one is refused as a gap; the receiver's
// frontier in reply brings the missing change.
TEST(catalog_sync, a_gap_is_answered_with_a_frontier_that_brings_the_missing_changes) {
  peer a{"127.0.0.1:1", replicated_catalog("a")}, b{"127.0.0.1:2", replicated_catalog("b")};
  auto first = push_on(a.replica, model_id{"acme", "bot"}, "s1", 1000);
  auto second = push_on(a.replica, model_id{"acme", "bot"}, "s2", 2000);
  catalog_sync_msg late;
  late.from_address = a.address;
  late.changes = second;  // the push of s1 was lost
  auto answer = deliver(b, late);
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->frontier.has_value());
  EXPECT_TRUE(answer->frontier->empty()) << "b holds nothing of a yet";
  converse(b, a, *answer);
  EXPECT_EQ(dump(b.replica.view()), dump(a.replica.view()));
  EXPECT_EQ(b.replica.size(), 3u);
}

TEST(catalog_sync, replicas_that_agree_have_nothing_to_say) {
  peer a{"127.0.0.1:1", replicated_catalog("a")}, b{"127.0.0.1:2", replicated_catalog("b")};
  push_on(a.replica, model_id{"acme", "bot"}, "s1", 1000);
  catalog_sync_msg hello;
  hello.from_address = b.address;
  hello.frontier = b.replica.frontier();
  converse(b, a, hello);
  hello.frontier = b.replica.frontier();
  EXPECT_FALSE(deliver(a, hello).has_value());
  EXPECT_TRUE(holds_more({{"a", 2}}, {{"a", 1}}));
  EXPECT_FALSE(holds_more({{"a", 1}}, {{"a", 1}, {"b", 4}}));
  EXPECT_TRUE(holds_more({{"c", 1}}, {{"a", 1}}));
}

}  // namespace
}  // namespace shoal
