#include "shoal/cluster/gossip_codec.hpp"

#include <gtest/gtest.h>

#include "proto/shoal.pb.h"
#include "support/sample_member.hpp"

namespace shoal {
namespace {

using testing::sample_member;

gossip_msg sample_msg(gossip_kind kind) {
  gossip_msg g;
  g.kind = kind;
  g.seq = 99;
  g.from_address = "127.0.0.1:7420";
  g.target_id = "b";
  g.target_address = "10.0.0.2:7420";
  g.updates = {sample_member("a"), sample_member("b")};
  g.updates[1].status = member_status::left;
  return g;
}

TEST(gossip_codec, every_kind_and_field_round_trips) {
  for (auto kind : {gossip_kind::ping, gossip_kind::ack, gossip_kind::ping_req, gossip_kind::leave,
                    gossip_kind::heartbeat, gossip_kind::sync_req, gossip_kind::sync}) {
    for (std::string secret : {"", "s3cret"}) {
      auto in = sample_msg(kind);
      auto out = decode_gossip(encode_gossip(in, secret), secret, 16);
      ASSERT_TRUE(out.msg.is_ok()) << out.msg.error().message();
      EXPECT_EQ(*out.msg, in);
      EXPECT_EQ(out.sender_address, "127.0.0.1:7420");
    }
  }
}

TEST(gossip_codec, the_cluster_secret_must_match_on_both_sides) {
  auto bytes = encode_gossip(sample_msg(gossip_kind::ping), "right");
  auto wrong = decode_gossip(bytes, "wrong", 16);
  ASSERT_FALSE(wrong.msg.is_ok());
  EXPECT_EQ(wrong.msg.error().message(), "wrong cluster secret");
  EXPECT_EQ(wrong.sender_address, "127.0.0.1:7420") << "who to name in the log line";

  auto none_here = decode_gossip(bytes, "", 16);
  ASSERT_FALSE(none_here.msg.is_ok());
  EXPECT_EQ(none_here.msg.error().message(),
            "the peer authenticates with a cluster secret but this node has none configured");

  auto none_there = decode_gossip(encode_gossip(sample_msg(gossip_kind::ping), ""), "right", 16);
  ASSERT_FALSE(none_there.msg.is_ok());
  EXPECT_EQ(none_there.msg.error().message(),
            "the peer sent no cluster secret but this node requires one");
}

TEST(gossip_codec, a_tampered_payload_fails_the_mac) {
  pb::GossipEnvelope env;
  ASSERT_TRUE(env.ParseFromString(encode_gossip(sample_msg(gossip_kind::ping), "k")));
  pb::GossipMessage g;
  ASSERT_TRUE(g.ParseFromString(env.payload()));
  g.mutable_updates(0)->set_status(pb::Member::ALIVE);
  g.mutable_updates(0)->set_incarnation(g.updates(0).incarnation() + 1);
  env.set_payload(g.SerializeAsString());
  auto out = decode_gossip(env.SerializeAsString(), "k", 16);
  ASSERT_FALSE(out.msg.is_ok());
  EXPECT_EQ(out.msg.error().message(), "wrong cluster secret");
}

TEST(gossip_codec, garbage_and_truncation_are_refused) {
  auto garbage = decode_gossip(std::string("\xff\xfe\x00garbage", 10), "", 16);
  ASSERT_FALSE(garbage.msg.is_ok());
  EXPECT_NE(garbage.msg.error().message().find("not a Shoal node-to-node message"), std::string::npos);
  auto bytes = encode_gossip(sample_msg(gossip_kind::ack), "");
  for (size_t cut : {size_t(1), bytes.size() / 2, bytes.size() - 1}) {
    auto out = decode_gossip(bytes.substr(0, cut), "", 16);
    EXPECT_FALSE(out.msg.is_ok()) << "cut at " << cut;
  }
}

TEST(gossip_codec, too_many_entries_and_bad_fields_are_refused) {
  auto msg = sample_msg(gossip_kind::ping);
  auto over = decode_gossip(encode_gossip(msg, ""), "", 1);
  ASSERT_FALSE(over.msg.is_ok());
  EXPECT_EQ(over.msg.error().message(), "a gossip message carries 2 member entries; the limit is 1");

  struct row {
    void (*spoil)(gossip_msg&);
    std::string message;
  };
  const row table[] = {
      {[](gossip_msg& g) { g.updates[0].id.clear(); }, "invalid member entry 'node a': no id"},
      {[](gossip_msg& g) { g.updates[0].cluster_address = "nohost"; },
       "invalid member entry 'node a': cluster address is not HOST:PORT"},
      {[](gossip_msg& g) { g.updates[0].http_address = "h:0"; },
       "invalid member entry 'node a': http address is not HOST:PORT"},
      {[](gossip_msg& g) { g.updates[0].name = std::string(300, 'x'); },
       "invalid member entry: a field is over 256 bytes"},
      {[](gossip_msg& g) { g.from_address = "x"; }, "the sender's address is not HOST:PORT"},
      {[](gossip_msg& g) { g.target_address = "1.2.3.4:99999"; }, "the target address is not HOST:PORT"},
      {[](gossip_msg& g) { g.target_id = std::string(257, 'x'); }, "the target id is over 256 bytes"},
      {[](gossip_msg& g) { g.kind = static_cast<gossip_kind>(9); }, "unknown gossip kind 9"},
  };
  for (const auto& r : table) {
    auto g = sample_msg(gossip_kind::ping_req);
    r.spoil(g);
    auto out = decode_gossip(encode_gossip(g, "k"), "k", 16);
    ASSERT_FALSE(out.msg.is_ok()) << r.message;
    EXPECT_EQ(out.msg.error().message(), r.message);
  }
  // An unknown status value on the wire.
  pb::GossipMessage g;
  auto* m = g.add_updates();
  m->set_id("x");
  m->set_cluster_address("127.0.0.1:1");
  m->set_status(static_cast<pb::Member::Status>(9));
  pb::GossipEnvelope env;
  env.set_payload(g.SerializeAsString());
  auto out = decode_gossip(env.SerializeAsString(), "", 16);
  ASSERT_FALSE(out.msg.is_ok());
  EXPECT_NE(out.msg.error().message().find("unknown status"), std::string::npos);
}

}  // namespace
}  // namespace shoal
