// The data plane's frames and handshake as pure functions: frames split anywhere still come out
// whole, an announced size over the limit is refused, and the handshake admits exactly the peers
// that know the cluster secret (both ways), with fresh nonces.
#include "shoal/cluster/data_plane_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shoal {
namespace {

TEST(data_plane_frames, frames_come_out_whole_however_the_bytes_are_cut) {
  std::string wire;
  const std::vector<std::string> sent = {"", "a", std::string(70000, 'x'), "last"};
  for (const auto& s : sent) append_frame(wire, s);
  for (size_t cut = 0; cut <= wire.size(); cut += 997) {
    std::string buffer;
    std::vector<std::string> got;
    auto drain = [&] {
      std::string_view view(buffer);
      while (true) {
        auto f = next_frame(view, 1 << 20);
        ASSERT_TRUE(f.is_ok());
        if (!*f) break;
        got.emplace_back(**f);
      }
      buffer = std::string(view);
    };
    buffer.append(wire.substr(0, cut));
    drain();
    buffer.append(wire.substr(cut));
    drain();
    EXPECT_EQ(got, sent) << "cut at " << cut;
    EXPECT_TRUE(buffer.empty());
  }
}

TEST(data_plane_frames, a_frame_over_the_limit_is_refused_before_it_arrives) {
  std::string wire;
  append_frame(wire, std::string(1001, 'x'));
  std::string_view head(wire.data(), 4);  // only the length has arrived
  auto f = next_frame(head, 1000);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.error().code(), status_code::too_large);
  EXPECT_NE(f.error().message().find("1001"), std::string::npos) << f.error().message();
}

// Runs the whole handshake between a client knowing `client_secret` and a server knowing
// `server_secret`; returns the first failure, or ok.
status handshake(const std::string& client_secret, const std::string& server_secret) {
  const std::string cn = random_nonce();
  auto hello = parse_hello(make_hello(cn, "node-a"));
  if (!hello) return hello.error();
  if (hello->node_id != "node-a" || hello->nonce != cn) return status::internal("hello mangled");
  const std::string sn = random_nonce();
  auto server_nonce = check_challenge(client_secret, cn, make_challenge(server_secret, cn, sn));
  if (!server_nonce) return server_nonce.error();
  return check_proof(server_secret, cn, sn, make_proof(client_secret, cn, *server_nonce));
}

TEST(data_plane_handshake, peers_with_the_same_secret_agree) {
  EXPECT_TRUE(handshake("s3cret", "s3cret").is_ok());
  EXPECT_TRUE(handshake("", "").is_ok()) << "no secret: open, as gossip is";
}

TEST(data_plane_handshake, a_stranger_is_refused_whichever_end_it_is) {
  status s = handshake("wrong", "s3cret");
  EXPECT_EQ(s.code(), status_code::unauthenticated);
  EXPECT_NE(s.message().find("cluster secret"), std::string::npos) << s.message();
  EXPECT_EQ(handshake("s3cret", "wrong").code(), status_code::unauthenticated);
  EXPECT_EQ(handshake("", "s3cret").code(), status_code::unauthenticated)
      << "a client without a secret cannot reach a node with one";
  EXPECT_EQ(handshake("s3cret", "").code(), status_code::unauthenticated)
      << "nor can a node with a secret be fooled by a server without one";
}

TEST(data_plane_handshake, a_recorded_proof_does_not_open_another_connection) {
  const std::string cn = random_nonce();
  const std::string sn1 = random_nonce();
  const std::string proof = make_proof("k", cn, sn1);
  ASSERT_TRUE(check_proof("k", cn, sn1, proof).is_ok());
  const std::string sn2 = random_nonce();
  ASSERT_NE(sn1, sn2);
  EXPECT_FALSE(check_proof("k", cn, sn2, proof).is_ok()) << "the server's fresh nonce differs";
}

TEST(data_plane_handshake, what_is_not_a_hello_is_refused_with_a_reason) {
  EXPECT_FALSE(parse_hello("GET / HTTP/1.1\r\n").is_ok());
  EXPECT_FALSE(parse_hello(std::string(data_plane_magic) + "short").is_ok());
  EXPECT_FALSE(parse_hello(make_hello(random_nonce(), std::string(300, 'n'))).is_ok());
  EXPECT_FALSE(check_challenge("k", random_nonce(), "tiny").is_ok());
}

}  // namespace
}  // namespace shoal
